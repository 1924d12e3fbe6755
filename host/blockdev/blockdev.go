// Package blockdev opens the drive (or image file) luksmount hands to the VM:
// it resolves user-facing names to the device node to use, locks the target
// against a second luksmount, and reports its size and block sizes so the VM
// sees the same geometry as the host.
package blockdev

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Block sizes assumed for regular image files.
const (
	ImageLogicalBlockSize  = 512
	ImagePhysicalBlockSize = 4096
)

var (
	// ErrBusy means another process (normally another luksmount) holds the
	// target's lock.
	ErrBusy = errors.New("target is in use by another luksmount")
	// ErrInUse means the host itself uses the device (mounted, or held by
	// another driver), so handing it to a VM would corrupt it.
	ErrInUse = errors.New("device is in use by this host")
	// ErrNotDevice means the target is neither a block/character device nor a regular file.
	ErrNotDevice = errors.New("not a block device or image file")
)

// BusyError is returned when the target's lock is held elsewhere; it matches ErrBusy.
type BusyError struct{ Path string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is already in use by another luksmount; see `luksmount status`, or unmount it first", e.Path)
}
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Options control Open.
type Options struct {
	// ReadOnly opens the target read-only and takes a shared lock, so
	// several read-only users may coexist but no writer.
	ReadOnly bool
}

// Device is an open, locked target.
type Device struct {
	Target            string // what the user asked for
	Path              string // the node or file actually opened
	File              *os.File
	Size              int64 // bytes
	LogicalBlockSize  int
	PhysicalBlockSize int
	IsImage           bool // a regular file rather than a device
	ReadOnly          bool
	// claim holds the device exclusively against host use (Linux O_EXCL).
	claim io.Closer
}

// Open resolves target, opens it, takes an exclusive (or, read-only, a
// shared) advisory lock and reads its geometry. Close releases everything.
func Open(target string, opt Options) (*Device, error) {
	path := Resolve(target, runtimeGOOS, exists)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	isImage := fi.Mode().IsRegular()
	if !isImage && fi.Mode()&fs.ModeDevice == 0 {
		return nil, fmt.Errorf("cannot use %s: %w", path, ErrNotDevice)
	}
	f, err := openTarget(path, isImage, opt.ReadOnly)
	if err != nil {
		return nil, err
	}
	d := &Device{Target: target, Path: path, File: f, IsImage: isImage, ReadOnly: opt.ReadOnly}
	if err := lock(f, opt.ReadOnly); err != nil {
		f.Close()
		if errors.Is(err, ErrBusy) {
			return nil, &BusyError{Path: path}
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	// Claim only after the lock: a second luksmount must see ErrBusy, not our claim.
	if !isImage && !opt.ReadOnly {
		c, err := claimExclusive(path)
		if err != nil {
			f.Close()
			return nil, err
		}
		d.claim = c
	}
	if isImage {
		d.Size = fi.Size()
		d.LogicalBlockSize, d.PhysicalBlockSize = ImageLogicalBlockSize, ImagePhysicalBlockSize
	} else {
		g, err := deviceGeometry(f)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("cannot read the size of %s: %w", path, err)
		}
		d.Size, d.LogicalBlockSize, d.PhysicalBlockSize = g.size, g.logical, g.physical
	}
	return d, nil
}

// Close releases the lock and closes the target.
func (d *Device) Close() error {
	if d == nil || d.File == nil {
		return nil
	}
	if d.claim != nil {
		d.claim.Close()
		d.claim = nil
	}
	err := d.File.Close() // closing the last descriptor drops the flock
	d.File = nil
	return err
}

// ReaderAt returns a reader whose reads are widened to whole logical blocks,
// as raw devices (macOS /dev/rdisk*) require.
func (d *Device) ReaderAt() io.ReaderAt {
	return NewAlignedReader(d.File, d.LogicalBlockSize, d.Size)
}

type geometry struct {
	size              int64
	logical, physical int
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var macDisk = regexp.MustCompile(`^(?:/dev/)?r?(disk[0-9]+(?:s[0-9]+)?)$`)

// Resolve maps what the user typed to the path to open. On macOS, `disk4s1`,
// `/dev/disk4s1` and `rdisk4s1` all become `/dev/rdisk4s1`: the raw node
// bypasses the buffer cache and is many times faster. Elsewhere a bare name
// like `sdb1` that is not a file in the working directory becomes `/dev/sdb1`
// when that exists. Anything else (an image path) is returned cleaned.
func Resolve(target, goos string, exists func(string) bool) string {
	if goos == "darwin" {
		if m := macDisk.FindStringSubmatch(target); m != nil {
			return "/dev/r" + m[1]
		}
	}
	if !strings.Contains(target, "/") && !exists(target) && exists("/dev/"+target) {
		return "/dev/" + target
	}
	return filepath.Clean(target)
}

// WholeDiskName returns the macOS whole-disk identifier for a partition name
// (`/dev/rdisk4s1` -> `disk4`), or "" when target is not a macOS disk name.
func WholeDiskName(target string) string {
	m := macDisk.FindStringSubmatch(target)
	if m == nil {
		return ""
	}
	name := m[1]
	if i := strings.IndexByte(name[len("disk"):], 's'); i >= 0 {
		name = name[:len("disk")+i]
	}
	return name
}
