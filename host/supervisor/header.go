package supervisor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/fssniff"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/stackprobe"
)

// Detached LUKS headers (`luksmount --header FILE TARGET`, a drive made with `cryptsetup
// luksFormat --header FILE TARGET`, or any drive and a header backup of it). The header file is
// opened read-only (a shared lock), identified and checked against the data on the host, and
// handed to the VM as one more virtio-blk disk with read-only=on and serial
// control.HeaderSerial, after every other disk so the data drives keep their names. Nothing can
// write it: QEMU opens it read-only and the guest sees a read-only disk.

// headerFileError is a --header file that cannot be opened: the message is the user's, the
// wrapped error decides the exit code (missing, permission).
type headerFileError struct {
	msg string
	err error
}

func (e *headerFileError) Error() string { return e.msg }
func (e *headerFileError) Unwrap() error { return e.err }

// openHeader opens the --header file read-only.
func openHeader(open func(string, bool) (*blockdev.Device, error), path string) (*blockdev.Device, error) {
	d, err := open(path, true)
	switch {
	case err == nil:
		return d, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, &headerFileError{fmt.Sprintf("the --header file %s does not exist; give the file made by `cryptsetup luksFormat --header` (or `luksHeaderBackup`); nothing was changed", path), err}
	case errors.Is(err, fs.ErrPermission):
		return nil, &headerFileError{fmt.Sprintf("cannot read the --header file %s: permission denied; run with sudo or make it readable; nothing was changed", path), err}
	}
	return nil, &headerFileError{fmt.Sprintf("cannot use the --header file %s: %v", path, err), err}
}

// identity reads what the target is: its own header, or with --header the header file's,
// checked against the data device.
func (s *sup) identity() (*luksheader.Identity, error) {
	if s.opts.Header == "" {
		id, err := luksheader.Identify(s.dev.ReaderAt())
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", s.dev.Path, err)
		}
		if err := headerOnly(id, s.dev); err != nil {
			return nil, err
		}
		return id, nil
	}
	if s.stack != nil {
		return nil, control.Errorf(control.CodeInvalidArgument, "--header opens one LUKS drive, not the several devices of %s; give one device", s.opts.Target)
	}
	if s.opts.Crypt.Type != "" {
		return nil, control.Errorf(control.CodeInvalidArgument, "--header is for LUKS drives, not VeraCrypt, TrueCrypt or BitLocker; drop one of them")
	}
	both := control.Errorf(control.CodeInvalidArgument, "%s is given both as the --header file and as the drive; give the drive that holds the encrypted data as TARGET", s.dev.Path)
	if filepath.Clean(s.opts.Header) == s.dev.Path {
		return nil, both // before opening: the drive's lock would refuse it as busy
	}
	hdr, err := openHeader(s.deps.Open, s.opts.Header)
	if err != nil {
		return nil, err
	}
	s.header = hdr
	if same(hdr, s.dev) {
		return nil, both
	}
	id, err := luksheader.Identify(hdr.ReaderAt())
	if err != nil {
		return nil, fmt.Errorf("cannot read the --header file %s: %w", hdr.Path, err)
	}
	if err := checkDetached(id, hdr.Path, s.dev); err != nil {
		return nil, err
	}
	own, _ := luksheader.Identify(s.dev.ReaderAt())
	if note := ownHeaderNote(own, id, hdr.Path, s.dev.Path); note != "" {
		s.log.Note(timelog.Host, "%s", note)
		s.progress("note: %s", note)
	}
	if own != nil && own.Kind.IsLUKS() && own.Err == nil && own.UUID != id.UUID {
		return nil, control.Errorf(control.CodeInvalidArgument, "%s has a LUKS header of its own (UUID %s), and the --header file %s belongs to another volume (UUID %s); drop --header to use the drive's own header; nothing was changed",
			s.dev.Path, own.UUID, hdr.Path, id.UUID)
	}
	s.log.Note(timelog.Host, "detached header %s: LUKS%d, UUID %s, data at %d bytes of %s", hdr.Path, id.LUKS.Version, id.UUID, id.LUKS.PayloadOffset, sizeString(s.dev.Size))
	s.progress("%s: LUKS%d header from %s", s.dev.Path, id.LUKS.Version, hdr.Path)
	return id, nil
}

// checkDetached refuses a --header file that is no usable LUKS header, and data that cannot be
// what it encrypts: too small for the header's data area, or plainly something else there (a
// filesystem or a partition table is never ciphertext). Anything else opens or fails at the
// passphrase: a header does not record which device it belongs to.
func checkDetached(id *luksheader.Identity, path string, data *blockdev.Device) error {
	if !id.Kind.IsLUKS() {
		return control.Errorf(control.CodeNotEncrypted, "the --header file %s is not a LUKS header (no LUKS magic); give the file made by `cryptsetup luksFormat --header` or `cryptsetup luksHeaderBackup`; nothing was changed", path)
	}
	if id.Err != nil {
		return fmt.Errorf("the --header file %s: %w", path, id.Err)
	}
	h := id.LUKS
	if h.Cipher == "" {
		return control.Errorf(control.CodeCorruptHeader, "the --header file %s describes no encrypted data segment; check it with `cryptsetup luksDump %s`", path, path)
	}
	if data.Size <= h.PayloadOffset || (h.DataSize > 0 && data.Size < h.PayloadOffset+h.DataSize) {
		need := h.PayloadOffset + max(h.DataSize, 1)
		return control.Errorf(control.CodeUnsupportedFS, "the --header file %s puts the encrypted data at %d bytes (%d bytes at least), but %s has only %d: the header is not for this drive, or the drive is incomplete; nothing was changed",
			path, h.PayloadOffset, need, data.Path, data.Size)
	}
	area := io.NewSectionReader(data.ReaderAt(), h.PayloadOffset, data.Size-h.PayloadOffset)
	if what := plaintext(area, data.Size-h.PayloadOffset); what != "" {
		return control.Errorf(control.CodeUnsupportedFS, "%s holds %s where the --header file %s puts the encrypted data, so the header is not for this drive (encrypted data never looks like that); mount it without --header, or give the right drive; nothing was changed",
			data.Path, what, path)
	}
	return nil
}

// plaintext names what r plainly holds instead of ciphertext ("" = nothing recognised). Only
// signatures long enough that random data never matches them count: an MBR's two bytes do not.
func plaintext(r io.ReaderAt, size int64) string {
	if t := fssniff.Type(r); t != "" {
		return "a " + t + " filesystem"
	}
	if isExt(r) {
		return "an ext2/3/4 filesystem"
	}
	if id, err := luksheader.Identify(r); err == nil && id.Kind.IsLUKS() {
		return "a LUKS header"
	}
	if l, err := stackprobe.Probe(r, size); err == nil {
		switch l.Kind {
		case stackprobe.GPT:
			return "a GPT partition table (give the partition with the encrypted data)"
		case stackprobe.LVM2:
			return "an LVM physical volume"
		case stackprobe.MD:
			return "an mdadm RAID member"
		case stackprobe.BitLocker:
			return "a BitLocker volume"
		}
	}
	return ""
}

// isExt: the ext superblock's magic (0xEF53 at 1080) is only 16 bits, so a sane block size
// (s_log_block_size at 1048, at most 6: 64 KiB) and revision (s_rev_level at 1100, 0 or 1) must
// come with it (linux fs/ext4/ext4.h struct ext4_super_block).
func isExt(r io.ReaderAt) bool {
	sb := make([]byte, 1024)
	if n, _ := r.ReadAt(sb, 1024); n < len(sb) {
		return false
	}
	le := binary.LittleEndian
	return le.Uint16(sb[56:58]) == 0xEF53 && le.Uint32(sb[24:28]) <= 6 && le.Uint32(sb[76:80]) <= 1
}

// ownHeaderNote says what happens to a drive's own LUKS header when --header is given: a damaged
// one or one with the header file's UUID (the file is its header backup) is ignored for the file.
func ownHeaderNote(own, given *luksheader.Identity, path, dev string) string {
	switch {
	case own == nil || !own.Kind.IsLUKS():
		return ""
	case own.Err != nil:
		return fmt.Sprintf("%s's own LUKS header is unreadable (%v); opening it with the --header file %s instead (the drive's header is not changed)", dev, own.Err, path)
	case own.UUID == given.UUID:
		return fmt.Sprintf("%s has its own LUKS header; opening it with the --header file %s (the same volume's header, UUID %s) instead", dev, path, given.UUID)
	}
	return ""
}

// headerOnly refuses a target that is itself a detached header: its data offset is 0, the data
// lives on another drive (cryptsetup refuses it too: src/cryptsetup.c action_open_luks, "Reduced
// data offset is allowed only for detached LUKS header").
func headerOnly(id *luksheader.Identity, dev *blockdev.Device) error {
	if !id.Kind.IsLUKS() || id.LUKS == nil || id.Err != nil || id.LUKS.Cipher == "" || id.LUKS.PayloadOffset >= 4096 {
		return nil
	}
	return control.Errorf(control.CodeInvalidArgument, "%s holds only a detached LUKS header (its encrypted data starts at byte %d of another drive); give it with the drive that holds the data: `luksmount --header %s DRIVE`",
		dev.Path, id.LUKS.PayloadOffset, dev.Path)
}

func same(a, b *blockdev.Device) bool {
	if a.Path == b.Path {
		return true
	}
	fa, ea := a.File.Stat()
	fb, eb := b.File.Stat()
	return ea == nil && eb == nil && os.SameFile(fa, fb)
}

// addHeader presents the detached header file to the guest: read-only, last, named by serial.
func addHeader(vs *vm.Spec, spec BootSpec, invoking *vm.User) {
	d := spec.Header
	if d == nil {
		return
	}
	vs.Config.Disks = append(vs.Config.Disks, qemu.Disk{
		Path: d.Path, HostDevice: !d.IsImage, ReadOnly: true,
		LogicalBlockSize: d.LogicalBlockSize, PhysicalBlockSize: d.PhysicalBlockSize,
		Serial: control.HeaderSerial,
	})
	files, _ := vm.Unprivileged(runtime.GOOS, os.Geteuid(), invoking, d.File, !d.IsImage)
	if len(vs.DiskFiles) == len(vs.Config.Disks)-1 && len(files) == 1 {
		vs.DiskFiles = append(vs.DiskFiles, files[0])
	}
}

// errDetachedResize: `cryptsetup resize` of a mapping with a detached header needs the header
// again, and the guest does not grow those yet (guest/agent header.go).
func errDetachedResize(p string) error {
	return control.Errorf(control.CodeInvalidArgument, "%s was opened with --header: luksmount cannot resize such a drive yet (grow it on Linux: truncate, `cryptsetup resize --header FILE`, resize2fs); nothing was changed", p)
}
