package nfsserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/rootfs"
	"github.com/luksmount/luksmount/guest/rpcfront"
	nfs "github.com/willscott/go-nfs"
	"golang.org/x/sys/unix"
)

// Server is an NFSv3 + MOUNT server for one directory tree.
type Server struct {
	opts    Options
	ids     idMap
	table   *nfshandle.Table
	fs      *rootfs.FS
	fsid    uint64
	verf    [8]byte // write verifier: changes every time a server starts
	stats   statCache
	calls   callStats
	fds     *fdCache
	pool    *rpcfront.PipePool
	rpc     *rpcfront.Server
	started time.Time

	mountsMu sync.Mutex
	mounts   map[string]string // client address -> dirpath, for DUMP
	closed   sync.Once
}

// Pass-through calls to go-nfs run on this many in-memory connections at once.
const passThroughConns = 16

// New checks opts and prepares a server; it does not listen yet.
func New(opts Options) (*Server, error) {
	st, err := os.Stat(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("cannot serve %s: %w", opts.Root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("cannot serve %s: not a directory", opts.Root)
	}
	s := &Server{opts: opts, mounts: map[string]string{}, started: time.Now()}
	s.ids = idMap{pass: opts.PassThroughIDs, clientUID: opts.ClientUID, clientGID: opts.ClientGID,
		driveUID: opts.DriveUID, driveGID: opts.DriveGID}
	if opts.OwnerFromRoot {
		var rst unix.Stat_t
		if err := unix.Stat(opts.Root, &rst); err != nil {
			return nil, fmt.Errorf("cannot stat %s: %w", opts.Root, err)
		}
		s.ids.driveUID, s.ids.driveGID = rst.Uid, rst.Gid
	}
	if _, err := rand.Read(s.verf[:]); err != nil {
		return nil, fmt.Errorf("cannot make write verifier: %w", err)
	}
	if s.table, err = nfshandle.Open(opts.Root); err != nil {
		return nil, err
	}
	s.fsid = s.table.FSID()
	s.fs, err = rootfs.New(s.table.RootPath(), rootfs.Options{
		ReadOnly: opts.ReadOnly,
		Owner: func() (int, int, bool) {
			u, g := s.ids.owner()
			return int(u), int(g), true
		},
		MapChown: func(uid, gid int) (int, int) {
			u, g := s.ids.in(uint32(uid), uint32(gid))
			return int(u), int(g)
		},
		OnStat: s.stats.put,
	})
	if err != nil {
		s.table.Close()
		return nil, err
	}
	s.fds = newFdCache(s.table, opts.ReadOnly, 256)
	inner := &nfs.Server{Handler: &handler{s: s}, ID: s.verf}
	s.pool = rpcfront.NewPipePool(inner.Serve, passThroughConns, opts.PassThroughTimeout)
	s.rpc = rpcfront.NewServer(s, rpcfront.Config{
		MaxRecord:   maxIO + 64<<10,
		MaxInFlight: 32,
		Authorize:   s.authorize,
		Logf:        opts.Logf,
	})
	return s, nil
}

// Serve answers NFS and MOUNT calls on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.rpc.Serve(l)
	if errors.Is(err, rpcfront.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting, closes connections, waits for calls in flight and
// flushes everything written to the filesystem.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		start := time.Now()
		s.rpc.Close()
		s.pool.Close()
		err = s.Sync()
		s.fds.closeAll()
		s.fs.Close()
		s.table.Close()
		s.opts.logf("nfs server stopped; data flushed in %v", time.Since(start).Round(time.Millisecond))
		if sum := s.calls.String(); sum != "" {
			s.opts.logf("nfs calls answered (count, mean server time): %s", sum)
		}
	})
	return err
}

// Sync flushes every dirty page of the served filesystem to disk.
func (s *Server) Sync() error {
	fd, err := unix.Open(s.table.RootPath(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s to sync: %w", s.table.RootPath(), err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("cannot sync %s: %w", s.table.RootPath(), err)
	}
	return nil
}

// authorize refuses calls from anyone but the mounting user and root (point
// 8). NULL pings are always answered so clients can probe the server.
func (s *Server) authorize(c *rpcfront.Call) uint32 {
	if c.Proc == 0 {
		return 0
	}
	if c.CredFlavor != rpcfront.AuthSys || !c.CredOK {
		return rpcfront.AuthTooWeak
	}
	if c.UID != s.opts.ClientUID && c.UID != 0 {
		return rpcfront.AuthTooWeak
	}
	return 0
}

// handler is the go-nfs Handler: persistent handles and our contained FS.
type handler struct{ s *Server }

func (h *handler) Mount(ctx context.Context, c net.Conn, req nfs.MountRequest) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
	return nfs.MountStatusOk, h.s.fs, []nfs.AuthFlavor{nfs.AuthFlavorUnix}
}

func (h *handler) Change(billy.Filesystem) billy.Change {
	if h.s.opts.ReadOnly {
		return nil
	}
	return h.s.fs
}

func (h *handler) FSStat(ctx context.Context, f billy.Filesystem, st *nfs.FSStat) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(h.s.table.RootFd(), &sfs); err != nil {
		return err
	}
	bs := uint64(sfs.Bsize)
	st.TotalSize = sfs.Blocks * bs
	st.FreeSize = sfs.Bfree * bs
	st.AvailableSize = sfs.Bavail * bs
	st.TotalFiles = sfs.Files
	st.FreeFiles = sfs.Ffree
	st.AvailableFiles = sfs.Ffree
	return nil
}

func (h *handler) ToHandle(f billy.Filesystem, p []string) []byte {
	hd, err := h.s.handleOfPath(strings.Join(p, "/"))
	if err != nil {
		return nil
	}
	return hd
}

func (h *handler) FromHandle(fh []byte) (billy.Filesystem, []string, error) {
	rel, err := h.s.table.Path(fh)
	if err != nil {
		return nil, nil, &nfs.NFSStatusError{NFSStatus: nfs.NFSStatusStale, WrappedErr: err}
	}
	if rel == "" {
		return h.s.fs, []string{}, nil
	}
	return h.s.fs, strings.Split(rel, "/"), nil
}

func (h *handler) InvalidateHandle(billy.Filesystem, []byte) error { return nil }

// HandleLimit is unbounded: handles are not stored anywhere.
func (h *handler) HandleLimit() int { return 1 << 30 }

// handleOfPath makes the handle of a path relative to the root, resolving
// the parent inside the tree and not following a final symlink.
func (s *Server) handleOfPath(rel string) ([]byte, error) {
	if rel == "" || rel == "." || rel == "/" {
		return s.table.Root(), nil
	}
	d, base, err := s.fs.OpenParent(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return s.table.At(int(d.Fd()), base)
}
