package nfsserver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/rpcfront"
	"golang.org/x/sys/unix"
)

// Server is an NFSv3 + MOUNT server for one directory tree.
type Server struct {
	opts    Options
	ids     idMap
	table   *nfshandle.Table
	rootH   []byte // the root's handle (Table.Root copies it each time)
	fsid    uint64
	verf    [8]byte // write verifier: changes every time a server starts
	calls   callStats
	fds     *fdCache
	paths   *fdCache       // O_PATH fds by handle
	fresh   freshExclusive // FixedAttrs: EXCLUSIVE creates awaiting their SETATTR
	rpc     *rpcfront.Server
	started time.Time

	mountsMu sync.Mutex
	mounts   map[string]string // client address -> dirpath, for DUMP
	closed   sync.Once
}

// maxRecord is the largest call accepted: a WRITE of maxIO and its header.
const maxRecord = maxIO + 64<<10

// testHookRPCConfig lets tests shorten rpcfront's timeouts.
var testHookRPCConfig func(*rpcfront.Config)

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
	s.rootH = s.table.Root()
	s.fds = newFdCache(s.table, opts.ReadOnly, 256)
	s.paths = newFdCache(s.table, opts.ReadOnly, 1024)
	s.paths.paths = true
	cfg := rpcfront.Config{
		MaxRecord:   maxRecord,
		MaxInFlight: 32,
		Authorize:   s.authorize,
		Logf:        opts.Logf,
	}
	if testHookRPCConfig != nil {
		testHookRPCConfig(&cfg)
	}
	s.rpc = rpcfront.NewServer(s, cfg)
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
		err = s.Sync()
		s.fds.closeAll()
		s.paths.closeAll()
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

// authorize refuses calls from anyone but the mounting user and root. NULL
// pings are always answered so clients can probe the server.
func (s *Server) authorize(c *rpcfront.Call) uint32 {
	if c.Proc == procNull {
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

// handleOfPath makes the handle of a directory given by a path relative to
// the root (MOUNT of a subdirectory). Each component is opened without
// following symlinks, and ".." never appears after path.Clean, so the walk
// cannot leave the tree.
func (s *Server) handleOfPath(rel string) ([]byte, error) {
	if rel == "" || rel == "." || rel == "/" {
		return s.table.Root(), nil
	}
	fd, err := unix.Dup(s.table.RootFd())
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Split(strings.Trim(path.Clean("/"+rel), "/"), "/") {
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd = next
	}
	defer unix.Close(fd)
	return s.table.At(fd, "")
}
