package blockdev

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrWriteProtected means the medium refuses writes (a locked SD card, a read-only device).
var ErrWriteProtected = errors.New("the medium is write-protected")

// darwinOpenError explains a failed open of path on macOS. The two permission errors mean
// different things there, even as root:
//   - EPERM: TCC denied raw disk access (Full Disk Access is per app, for the terminal).
//   - EACCES on a read-write open of a device as root: the medium is not writable; the disk
//     driver refuses writers with EACCES (IOStorageFamily IOMediaBSDClient.cpp dkopen:
//     FWRITE && !media->isWritable()).
//
// EACCES as another user is the device node's mode (root:operator 0640): run with sudo.
func darwinOpenError(path string, isImage, readOnly bool, euid int, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch {
	case isImage:
		return fmt.Errorf("cannot open %s: %w", path, err)
	case errno == syscall.EACCES && euid == 0 && !readOnly:
		return fmt.Errorf("cannot open %s for writing: %w (%v); use -o ro to mount it read-only, or unlock it (an SD card's lock switch)", path, ErrWriteProtected, err)
	case errno == syscall.EACCES && euid != 0:
		return fmt.Errorf("cannot open %s: %w; run luksmount with sudo", path, err)
	case errno == syscall.EPERM:
		return fmt.Errorf("cannot open %s: %w; give your terminal app Full Disk Access in System Settings > Privacy & Security (then restart it), and run with sudo", path, err)
	case errno == syscall.EBUSY:
		return fmt.Errorf("cannot open %s: %w: %v", path, ErrInUse, err)
	default:
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
}
