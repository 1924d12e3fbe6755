package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/mountpoint"
	"github.com/luksmount/luksmount/host/nfsmount"
	"github.com/luksmount/luksmount/host/unmountwatch"
)

// platformHost is Host on the real machine: host/nfsmount and host/mountpoint do the work.
type platformHost struct {
	mounter nfsmount.Mounter
	user    *mountpoint.User // the sudo user, or nil
	ro      bool

	addrHost string // the NFS server address Mount used, for the unmount watch
	addrPort int
}

// NewHost returns the real Host. readOnly mounts the export read-only on the host too.
func NewHost(readOnly bool) Host {
	h := &platformHost{mounter: nfsmount.New(), ro: readOnly}
	if u, ok := mountpoint.InvokingUser(os.Getenv); ok {
		h.user = &u
	}
	return h
}

func (h *platformHost) CheckNotMounted(dev *blockdev.Device) error { return checkNotMounted(dev) }

func (h *platformHost) CanMount() (bool, string) { return canMountNFS() }

func (h *platformHost) PrepareMountpoint(path, label string, uid, gid int) (string, func(), error) {
	if path != "" {
		// The user's directory: create it if missing (and then remove it afterwards), never
		// remove one that was there.
		if _, err := os.Stat(path); err == nil {
			return path, func() {}, nil
		}
		if err := os.MkdirAll(path, 0o755); err != nil {
			return "", nil, fmt.Errorf("cannot create mount point %s: %w", path, err)
		}
		if h.user != nil {
			os.Chown(path, h.user.UID, h.user.GID)
		}
		m := mountpoint.Reopen(mountpoint.OS{}, path)
		return path, func() { m.Remove() }, nil
	}
	parent := mountpoint.DefaultParent(runtime.GOOS, h.user)
	m, err := mountpoint.Create(mountpoint.OS{}, parent, label, "LUKS", h.user)
	if err != nil {
		return "", nil, err
	}
	return m.Path, func() { m.Remove() }, nil
}

func (h *platformHost) Mount(ctx context.Context, addr, export, mp string, extra []string, uid, gid int) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad NFS address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("bad NFS port in %q", addr)
	}
	h.addrHost, h.addrPort = host, port
	o := nfsmount.Options{Host: host, Port: port, Export: export, Mountpoint: mp, ReadOnly: h.ro,
		Extra: strings.Join(extra, ","), UID: -1, GID: -1}
	if h.user != nil {
		o.UID, o.GID = h.user.UID, h.user.GID
	}
	return h.mounter.Mount(ctx, o)
}

func (h *platformHost) Unmount(ctx context.Context, mp string, force bool) error {
	return h.mounter.Unmount(ctx, mp, force)
}

func (h *platformHost) ForceUnmount(ctx context.Context, mp string) error {
	return ForceUnmount(ctx, mp)
}

func (h *platformHost) WatchUnmount(ctx context.Context, mp string) <-chan error {
	out := make(chan error, 1)
	t := unmountwatch.Target{Mountpoint: mp, Host: h.addrHost, Port: h.addrPort}
	events, err := unmountwatch.Watch(ctx, t)
	if err != nil {
		if errors.Is(err, unmountwatch.ErrNotMounted) {
			out <- nil // already gone
		} else {
			out <- err
		}
		return out
	}
	go func() {
		for ev := range events {
			switch ev.Kind {
			case unmountwatch.Unmounted:
				out <- nil
				return
			case unmountwatch.Failed:
				out <- ev.Err
				return
			}
			// NotResponding and Dead: the supervisor notices a dead VM itself.
		}
	}()
	return out
}

func (h *platformHost) ServeOnlyHint(addr, export string) string {
	return nfsmount.ServeOnlyHint(addr, export)
}
