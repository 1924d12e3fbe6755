package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/pierrec/lz4/v4"
)

// Tree is the file tree of an image, built up in any order and written sorted, so the archive
// depends only on what is in it. Parent directories are created as needed (0755).
type Tree struct {
	entries map[string]cpio.Record
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]cpio.Record{}} }

// Dir adds a directory.
func (t *Tree) Dir(p string, perm uint32) error {
	return t.add(cpio.Record{Name: p, Mode: cpio.TypeDir | perm&0o7777})
}

// File adds a regular file.
func (t *Tree) File(p string, data []byte, perm uint32) error {
	return t.add(cpio.Record{Name: p, Mode: cpio.TypeReg | perm&0o7777, Data: data})
}

// Symlink adds a symbolic link to target.
func (t *Tree) Symlink(p, target string) error {
	return t.add(cpio.Record{Name: p, Mode: cpio.TypeSymlink | 0o777, Data: []byte(target)})
}

// CharDev adds a character device node.
func (t *Tree) CharDev(p string, perm, major, minor uint32) error {
	return t.add(cpio.Record{Name: p, Mode: cpio.TypeChar | perm&0o7777, RdevMajor: major, RdevMinor: minor})
}

// Has reports whether p is in the tree.
func (t *Tree) Has(p string) bool {
	_, ok := t.entries[clean(p)]
	return ok
}

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (t *Tree) add(r cpio.Record) error {
	r.Name = clean(r.Name)
	if err := cpio.CheckName(r.Name); err != nil {
		return err
	}
	if old, ok := t.entries[r.Name]; ok {
		if old.Mode == r.Mode && old.RdevMajor == r.RdevMajor && old.RdevMinor == r.RdevMinor && bytes.Equal(old.Data, r.Data) {
			return nil
		}
		return fmt.Errorf("/%s is added twice with different contents", r.Name)
	}
	if dir := path.Dir(r.Name); dir != "." {
		if old, ok := t.entries[dir]; ok && old.Mode&cpio.TypeMask != cpio.TypeDir {
			return fmt.Errorf("cannot add /%s: /%s is not a directory", r.Name, dir)
		}
		if !t.Has(dir) {
			if err := t.Dir(dir, 0o755); err != nil {
				return err
			}
		}
	}
	t.entries[r.Name] = r
	return nil
}

// WriteCpio writes the tree as a newc archive, sorted by path (so parents precede children),
// every entry owned by root with the given mtime.
func (t *Tree) WriteCpio(w io.Writer, mtime uint32) error {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := cpio.NewWriter(w)
	for _, n := range names {
		r := t.entries[n]
		r.UID, r.GID, r.Mtime = 0, 0, mtime
		if err := cw.WriteRecord(r); err != nil {
			return err
		}
	}
	return cw.Close()
}

// LZ4 compresses data in the LZ4 legacy format, the only LZ4 framing the kernel's initramfs
// unpacker takes (CONFIG_RD_LZ4, lib/decompress_unlz4.c: 8 MiB blocks), at the high-compression
// level, deterministically (one goroutine, fixed level: the bytes depend only on data and the
// pinned library). LZ4 rather than gzip or zstd: under TCG the kernel spends a quarter of
// gzip's instructions on it (zstd: three quarters), which is most of the boot, for an image
// about 15% larger than gzip's.
func LZ4(w io.Writer, data []byte) error {
	zw, err := NewLZ4Writer(w)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("cannot compress image: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("cannot compress image: %w", err)
	}
	return nil
}

// NewLZ4Writer starts an LZ4 legacy stream on w. Anything appended to an image (a test's or the
// bench's overlay archive) must be one too: the kernel's unlz4 reads everything after the image
// as LZ4 blocks, skipping a repeated magic, so a gzip or plain cpio there fails to unpack.
func NewLZ4Writer(w io.Writer) (io.WriteCloser, error) {
	zw := lz4.NewWriter(w)
	if err := zw.Apply(lz4.LegacyOption(true), lz4.CompressionLevelOption(lz4.Level9), lz4.ConcurrencyOption(1)); err != nil {
		return nil, fmt.Errorf("cannot compress image: %w", err)
	}
	return zw, nil
}

// ReadImage reads an LZ4-compressed newc image into its records, keyed by name.
func ReadImage(r io.Reader) (map[string]cpio.Record, error) {
	cr := cpio.NewReader(lz4.NewReader(r))
	out := map[string]cpio.Record{}
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out[rec.Name] = rec
	}
}

// DiffImages lists the entries that differ between two images, one line each, sorted.
func DiffImages(a, b map[string]cpio.Record) []string {
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	var out []string
	for n := range names {
		ra, oka := a[n]
		rb, okb := b[n]
		switch {
		case !oka:
			out = append(out, "only in second: /"+n)
		case !okb:
			out = append(out, "only in first: /"+n)
		case ra.Mode != rb.Mode || ra.UID != rb.UID || ra.GID != rb.GID || ra.Mtime != rb.Mtime || ra.RdevMajor != rb.RdevMajor || ra.RdevMinor != rb.RdevMinor:
			out = append(out, fmt.Sprintf("metadata differs: /%s (mode %o/%o mtime %d/%d)", n, ra.Mode, rb.Mode, ra.Mtime, rb.Mtime))
		case !bytes.Equal(ra.Data, rb.Data):
			out = append(out, fmt.Sprintf("content differs: /%s (%d/%d bytes)", n, len(ra.Data), len(rb.Data)))
		}
	}
	sort.Strings(out)
	return out
}
