package blockdev

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

const runtimeGOOS = "darwin"

// <sys/disk.h> ioctls: _IOR('d', 24, uint32_t), _IOR('d', 25, uint64_t), _IOR('d', 77, uint32_t).
const (
	dkiocGetBlockSize         = 0x40046418
	dkiocGetBlockCount        = 0x40086419
	dkiocGetPhysicalBlockSize = 0x4004644d
)

// claimExclusive has no equivalent here; the flock guards against other
// luksmounts and the CLI checks the mount table itself.
func claimExclusive(string) (io.Closer, error) { return nil, nil }

func openTarget(path string, isImage, readOnly bool) (*os.File, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, darwinOpenError(path, isImage, readOnly, os.Geteuid(), err)
	}
	return f, nil
}

func deviceGeometry(f *os.File) (geometry, error) {
	fd := int(f.Fd())
	// IoctlGetInt zeroes a 64-bit int; a uint32 result lands in its low half
	// on little-endian arm64 and amd64, the only Macs there are.
	logical, err := unix.IoctlGetInt(fd, dkiocGetBlockSize)
	if err != nil {
		return geometry{}, fmt.Errorf("DKIOCGETBLOCKSIZE: %w", err)
	}
	count, err := unix.IoctlGetInt(fd, dkiocGetBlockCount)
	if err != nil {
		return geometry{}, fmt.Errorf("DKIOCGETBLOCKCOUNT: %w", err)
	}
	physical, err := unix.IoctlGetInt(fd, dkiocGetPhysicalBlockSize)
	if err != nil || physical <= 0 {
		physical = logical // ENOTSUP/ENOTTY: drivers that do not know assume logical
	}
	if logical <= 0 {
		return geometry{}, fmt.Errorf("device reports block size %d", logical)
	}
	return geometry{size: int64(count) * int64(logical), logical: logical, physical: physical}, nil
}
