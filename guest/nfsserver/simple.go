package nfsserver

import (
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// Server is an NFSv3 server for one directory tree.
type Server struct {
	opts Options

	mu        sync.Mutex
	listeners []net.Listener
	closed    bool
	handler   nfs.Handler
}

// New checks opts and prepares a server; it does not listen yet.
func New(opts Options) (*Server, error) {
	st, err := os.Stat(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("cannot serve %s: %w", opts.Root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("cannot serve %s: not a directory", opts.Root)
	}
	fs := osfs.New(opts.Root, osfs.WithBoundOS())
	h := nfshelper.NewCachingHandler(nfshelper.NewNullAuthHandler(fs), 1<<20)
	return &Server{opts: opts, handler: h}, nil
}

// Serve answers NFS and MOUNT calls on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := nfs.Serve(l, s.handler)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return err
}

// Close stops accepting connections.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, l := range s.listeners {
		l.Close()
	}
	return nil
}
