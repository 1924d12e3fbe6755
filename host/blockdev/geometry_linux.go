package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

const runtimeGOOS = "linux"

// claimExclusive opens a block device with O_EXCL: Linux fails with EBUSY
// if the device is mounted or claimed by the kernel (dm-crypt, md, swap...),
// and while we hold it nothing on the host can claim it; plain opens (QEMU's)
// still succeed.
func claimExclusive(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_EXCL, 0)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("cannot use %s: %w: it is mounted or used by another driver; unmount it (or close its mapping) first", path, ErrInUse)
	default:
		return nil, fmt.Errorf("cannot open %s exclusively: %w", path, err)
	}
}

func openTarget(path string, isImage, readOnly bool) (*os.File, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flags, 0)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("cannot open %s: %w (run luksmount with sudo)", path, err)
	default:
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
}

func deviceGeometry(f *os.File) (geometry, error) {
	fd := int(f.Fd())
	// BLKGETSIZE64 writes a u64; IoctlGetInt's int is 64-bit on every Linux we build for.
	size, err := unix.IoctlGetInt(fd, unix.BLKGETSIZE64)
	if err != nil {
		return geometry{}, fmt.Errorf("BLKGETSIZE64: %w", err)
	}
	logical, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil {
		return geometry{}, fmt.Errorf("BLKSSZGET: %w", err)
	}
	physical, err := unix.IoctlGetUint32(fd, unix.BLKPBSZGET)
	if err != nil || physical == 0 {
		physical = uint32(logical)
	}
	return geometry{size: int64(size), logical: logical, physical: int(physical)}, nil
}
