//go:build !linux && !darwin

package nfsmount

import (
	"context"
	"fmt"
	"runtime"
)

// New returns a mounter that explains NFS mounts are unsupported here.
func New() Mounter { return unsupported{} }

type unsupported struct{}

func (unsupported) Mount(context.Context, Options) error {
	return fmt.Errorf("mounting NFS is not supported on %s; use --no-mount and mount the export by hand", runtime.GOOS)
}

func (unsupported) Unmount(_ context.Context, mp string, _ bool) error {
	return fmt.Errorf("cannot unmount %s: not supported on %s", mp, runtime.GOOS)
}
