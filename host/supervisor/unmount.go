package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/mountpoint"
	"github.com/luksmount/luksmount/host/nfsmount"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/unmountwatch"
)

// deadUnmountTimeout bounds taking off a mount whose NFS server (the VM) is gone.
var deadUnmountTimeout = 15 * time.Second

// deadUnmountCommands take off a mount whose server is gone, in order, with no plain unmount
// first: a plain unmount syncs dirty data before anything else (xnu vfs_syscalls.c dounmount:
// VFS_SYNC(mp, MNT_WAIT) unless MNT_FORCE), which against a dead server waits out the soft
// timeouts or the 180 s deadtimeout. Linux: -f aborts pending RPCs, -l at least detaches it.
func deadUnmountCommands(goos, mp string) [][]string {
	if goos == "darwin" {
		return [][]string{{"/usr/sbin/diskutil", "unmount", "force", mp}, {"/sbin/umount", "-f", mp}}
	}
	return [][]string{{"umount", "-f", mp}, {"umount", "-l", mp}}
}

// ForceUnmount takes mp off at once, for a mount whose server is gone, within deadUnmountTimeout.
func ForceUnmount(ctx context.Context, mp string) error {
	return forceUnmount(ctx, nfsmount.ExecRunner{}, runtime.GOOS, mp)
}

func forceUnmount(ctx context.Context, r nfsmount.Runner, goos, mp string) error {
	ctx, cancel := context.WithTimeout(ctx, deadUnmountTimeout)
	defer cancel()
	var errs []error
	for _, c := range deadUnmountCommands(goos, mp) {
		ch := make(chan error, 1)
		go func() { // a command stuck in the kernel must not hold us past the deadline
			out, err := r.Run(ctx, nil, c[0], c[1:]...)
			if err != nil {
				err = fmt.Errorf("%s: %w %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
			}
			ch <- err
		}()
		select {
		case err := <-ch:
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("cannot force-unmount %s within %s: %w", mp, deadUnmountTimeout, errors.Join(append(errs, ctx.Err())...))
		}
	}
	return fmt.Errorf("cannot force-unmount %s: %w", mp, errors.Join(errs...))
}

// CleanStale is session.Registry's OnStale: a session whose supervisor died may have left its
// NFS mount behind (Finder shows it "not responding", and the next Lstat of it can hang). If the
// recorded mount point is still an NFS mount from 127.0.0.1, force it off and remove the
// directory luksmount made for it.
func CleanStale(st session.State) error {
	return cleanStale(st, stillMounted, ForceUnmount, func(mp string) error {
		return mountpoint.Reopen(mountpoint.OS{}, mp).Remove()
	})
}

func cleanStale(st session.State, mounted func(mp string, port int) (bool, error),
	unmount func(ctx context.Context, mp string) error, remove func(mp string) error) error {
	if st.Mountpoint == "" {
		return nil
	}
	port := 0
	if _, p, err := net.SplitHostPort(st.NFSAddress); err == nil {
		port, _ = strconv.Atoi(p)
	}
	on, err := mounted(st.Mountpoint, port)
	if err != nil {
		return fmt.Errorf("cannot tell whether %s is still mounted: %w", st.Mountpoint, err)
	}
	if on {
		if err := unmount(context.Background(), st.Mountpoint); err != nil {
			return err
		}
	}
	if st.MountpointCreated {
		remove(st.Mountpoint) // refuses a directory that is not empty
	}
	return nil
}

// stillMounted reports whether mp is an NFS mount from 127.0.0.1 (port, where the mount table
// records one), reading the table without touching the mount itself (it may hang).
func stillMounted(mp string, port int) (bool, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := unmountwatch.Watch(ctx, unmountwatch.Target{Mountpoint: mp, Host: "127.0.0.1", Port: port})
	switch {
	case errors.Is(err, unmountwatch.ErrNotMounted):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
