package unmountwatch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// <sys/mount.h> vfs event flags carried in EVFILT_FS events' fflags.
// VQ_UNMOUNT (0x0010) needs no constant: every event triggers a rescan.
const (
	vqNotResp = 0x0001
	vqDead    = 0x0020
)

// Watch reports when t stops being mounted. It fails with ErrNotMounted if t
// is not mounted now. The channel closes after an Unmounted or Failed
// event, or when ctx ends.
func Watch(ctx context.Context, t Target) (<-chan Event, error) {
	// statfs reports real paths (/private/tmp, not /tmp). Resolve the parent
	// only: stat on the mount itself could hang on a dead server.
	if p, err := filepath.EvalSymlinks(filepath.Dir(t.Mountpoint)); err == nil {
		t.Mountpoint = filepath.Join(p, filepath.Base(t.Mountpoint))
	}
	mounted := func() (bool, error) {
		list, err := fsstat()
		if err != nil {
			return false, err
		}
		return MountedInFSList(list, t), nil
	}
	if ok, err := mounted(); err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("cannot watch %s: %w as NFS from %s", t.Mountpoint, ErrNotMounted, t.host())
	}
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, fmt.Errorf("cannot watch mounts: kqueue: %w", err)
	}
	// EVFILT_FS is global: ident 0, every mount/unmount/notresp on the system.
	ev := unix.Kevent_t{Filter: unix.EVFILT_FS, Flags: unix.EV_ADD | unix.EV_CLEAR}
	if _, err := unix.Kevent(kq, []unix.Kevent_t{ev}, nil, nil); err != nil {
		unix.Close(kq)
		return nil, fmt.Errorf("cannot watch mounts: kevent EVFILT_FS: %w", err)
	}
	wait := func(timeout time.Duration) ([]Kind, error) {
		ts := unix.NsecToTimespec(int64(timeout))
		evs := make([]unix.Kevent_t, 8)
		n, err := unix.Kevent(kq, nil, evs, &ts)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				return nil, nil
			}
			return nil, err
		}
		var kinds []Kind
		for _, e := range evs[:n] {
			// No fsid comes with these (xnu signals them with a NULL fsid for
			// unmounts); the rescan decides whether it was ours.
			if e.Fflags&vqNotResp != 0 {
				kinds = append(kinds, NotResponding)
			}
			if e.Fflags&vqDead != 0 {
				kinds = append(kinds, Dead)
			}
		}
		return kinds, nil
	}
	return run(ctx, source{mounted: mounted, wait: wait, close: func() { unix.Close(kq) }}, PollInterval), nil
}

// fsstat lists every mounted file system without blocking on unresponsive
// ones (MNT_NOWAIT: a dead NFS server must not hang the watcher).
func fsstat() ([]FSEntry, error) {
	for {
		n, err := unix.Getfsstat(nil, unix.MNT_NOWAIT)
		if err != nil {
			return nil, err
		}
		buf := make([]unix.Statfs_t, n+4)
		m, err := unix.Getfsstat(buf, unix.MNT_NOWAIT)
		if err != nil {
			return nil, err
		}
		if m == len(buf) {
			continue // the table grew between the calls
		}
		out := make([]FSEntry, 0, m)
		for i := range buf[:m] {
			out = append(out, FSEntry{
				Type:      cstr(buf[i].Fstypename[:]),
				MountOn:   cstr(buf[i].Mntonname[:]),
				MountFrom: cstr(buf[i].Mntfromname[:]),
			})
		}
		return out, nil
	}
}
