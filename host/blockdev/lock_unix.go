//go:build unix

package blockdev

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lock takes a non-blocking flock: exclusive for read-write, shared for
// read-only. It is released when the file is closed or the process dies.
func lock(f *os.File, readOnly bool) error {
	how := unix.LOCK_EX
	if readOnly {
		how = unix.LOCK_SH
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return ErrBusy
		default:
			return err
		}
	}
}
