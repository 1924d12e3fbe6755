// Package cpio writes and reads "newc" (SVR4, no CRC) cpio archives, the format the Linux kernel
// unpacks as an initramfs. The writer is deterministic: inode numbers are assigned in write order
// and every header field that could leak build-host state is the caller's explicit choice.
package cpio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// File type bits of Record.Mode (the st_mode values the kernel expects).
const (
	TypeMask    = 0o170000
	TypeDir     = 0o040000
	TypeReg     = 0o100000
	TypeSymlink = 0o120000
	TypeChar    = 0o020000
)

const (
	magic      = "070701"
	headerLen  = 110
	trailer    = "TRAILER!!!"
	maxNameLen = 4096
)

// ErrBadName is returned for names the kernel cannot unpack or that collide with the trailer.
var ErrBadName = errors.New("invalid cpio entry name")

// Record is one archive entry. Name has no leading slash ("init", "lib/modules/...").
// Data is the file contents for regular files and the link target for symlinks.
type Record struct {
	Name      string
	Mode      uint32 // type bits | permission bits
	UID, GID  uint32
	Mtime     uint32
	RdevMajor uint32
	RdevMinor uint32
	Data      []byte
}

// Writer writes records as a newc stream. Close writes the trailer.
type Writer struct {
	w   io.Writer
	n   int64
	ino uint32
	err error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// CheckName reports whether name can be stored: non-empty, relative, no NUL, not the trailer name.
func CheckName(name string) error {
	switch {
	case name == "", name == trailer, strings.HasPrefix(name, "/"), strings.ContainsRune(name, 0), len(name) >= maxNameLen:
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// WriteRecord appends r to the archive.
func (w *Writer) WriteRecord(r Record) error {
	if w.err != nil {
		return w.err
	}
	if err := CheckName(r.Name); err != nil {
		return err
	}
	t := r.Mode & TypeMask
	if len(r.Data) > 0 && t != TypeReg && t != TypeSymlink {
		return fmt.Errorf("cpio entry %q: only regular files and symlinks carry data", r.Name)
	}
	if uint64(len(r.Data)) > 0xffffffff {
		return fmt.Errorf("cpio entry %q: %d bytes is too large for newc", r.Name, len(r.Data))
	}
	w.ino++
	nlink := uint32(1)
	if t == TypeDir {
		nlink = 2
	}
	return w.write(w.ino, nlink, r)
}

func (w *Writer) write(ino, nlink uint32, r Record) error {
	var h bytes.Buffer
	h.WriteString(magic)
	for _, v := range []uint32{ino, r.Mode, r.UID, r.GID, nlink, r.Mtime, uint32(len(r.Data)), 0, 0, r.RdevMajor, r.RdevMinor, uint32(len(r.Name) + 1), 0} {
		fmt.Fprintf(&h, "%08x", v)
	}
	h.WriteString(r.Name)
	h.WriteByte(0)
	h.Write(make([]byte, pad4(int64(h.Len()))))
	if err := w.put(h.Bytes()); err != nil {
		return err
	}
	if err := w.put(r.Data); err != nil {
		return err
	}
	return w.put(make([]byte, pad4(int64(len(r.Data)))))
}

func (w *Writer) put(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("cannot write cpio archive: %w", err)
	}
	return w.err
}

// Close writes the trailer record. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	return w.write(0, 1, Record{Name: trailer})
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

// Reader reads records from a newc stream.
type Reader struct {
	r   io.Reader
	off int64
}

// NewReader returns a Reader that reads from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next record, or io.EOF after the trailer.
func (r *Reader) Next() (Record, error) {
	var hdr [headerLen]byte
	if _, err := r.read(hdr[:]); err != nil {
		return Record{}, r.fail(err)
	}
	if string(hdr[:6]) != magic {
		return Record{}, fmt.Errorf("cpio header at offset %d: bad magic %q (want newc %q)", r.off-headerLen, hdr[:6], magic)
	}
	var f [13]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return Record{}, fmt.Errorf("cpio header at offset %d: bad field %d: %w", r.off-headerLen, i, err)
		}
		f[i] = uint32(v)
	}
	size, nameLen := int64(f[6]), int64(f[11])
	if nameLen < 1 || nameLen > maxNameLen {
		return Record{}, fmt.Errorf("cpio header at offset %d: name length %d out of range", r.off-headerLen, nameLen)
	}
	name := make([]byte, nameLen+pad4(headerLen+nameLen))
	if _, err := r.read(name); err != nil {
		return Record{}, r.fail(err)
	}
	if name[nameLen-1] != 0 {
		return Record{}, fmt.Errorf("cpio header at offset %d: name is not NUL-terminated", r.off)
	}
	rec := Record{Name: string(name[:nameLen-1]), Mode: f[1], UID: f[2], GID: f[3], Mtime: f[5], RdevMajor: f[9], RdevMinor: f[10]}
	if rec.Name == trailer {
		return Record{}, io.EOF
	}
	// Copy through a buffer that grows with the data actually present, so a forged size
	// cannot make us allocate gigabytes up front.
	var data bytes.Buffer
	if n, err := io.CopyN(&data, r.r, size); err != nil {
		r.off += n
		return Record{}, r.fail(err)
	}
	r.off += size
	if size > 0 {
		rec.Data = data.Bytes()
	}
	if _, err := r.read(make([]byte, pad4(size))); err != nil {
		return Record{}, r.fail(err)
	}
	return rec, nil
}

func (r *Reader) read(b []byte) (int, error) {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	return n, err
}

func (r *Reader) fail(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("cpio archive truncated at offset %d (no trailer)", r.off)
	}
	return fmt.Errorf("cannot read cpio archive: %w", err)
}
