//go:build !linux

package fsops

import (
	"errors"

	"github.com/luksmount/luksmount/pkg/control"
)

var errUnsupported = errors.New("fsops: mounting is only supported in the Linux guest")

// SplitOptions is Linux-only (MS_* flags).
func SplitOptions(opts []string) (Options, error) {
	return Options{}, control.Errorf(control.CodeUnsupportedOp, "%v", errUnsupported)
}

// Mount is Linux-only.
func Mount(dev, target, fstype string, opts Options) error { return errUnsupported }

// Unmount is Linux-only.
func Unmount(target string, lazy bool) error { return errUnsupported }

// IsBusy is Linux-only.
func IsBusy(err error) bool { return false }

// MountedReadOnly is Linux-only.
func MountedReadOnly(path string) bool { return false }
