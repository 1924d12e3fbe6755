package unmountwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Watch reports when t stops being mounted. It fails with ErrNotMounted if t
// is not mounted now. The channel closes after an Unmounted or Failed
// event, or when ctx ends.
func Watch(ctx context.Context, t Target) (<-chan Event, error) {
	// Resolve the parent only: stat on the mount itself could hang on a dead server.
	if p, err := filepath.EvalSymlinks(filepath.Dir(t.Mountpoint)); err == nil {
		t.Mountpoint = filepath.Join(p, filepath.Base(t.Mountpoint))
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cannot watch mounts: %w", err)
	}
	mounted := func() (bool, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		ms, err := ParseMountinfo(f)
		if err != nil {
			return false, err
		}
		return MountedInMountinfo(ms, t), nil
	}
	if ok, err := mounted(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot read the mount table: %w", err)
	} else if !ok {
		f.Close()
		return nil, fmt.Errorf("cannot watch %s: %w as NFS from %s", t.Mountpoint, ErrNotMounted, t.host())
	}
	// The kernel flags an open mountinfo with POLLPRI|POLLERR whenever the
	// mount table of this namespace changes (proc(5)).
	wait := func(timeout time.Duration) ([]Kind, error) {
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLPRI}}
		_, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return nil, err
		}
		return nil, nil
	}
	return run(ctx, source{mounted: mounted, wait: wait, close: func() { f.Close() }}, PollInterval), nil
}
