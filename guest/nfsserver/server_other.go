//go:build !linux

package nfsserver

import (
	"errors"
	"net"
)

// Server is an NFSv3 server; it only runs in the Linux guest.
type Server struct{}

// ErrUnsupported is returned by New on systems other than Linux.
var ErrUnsupported = errors.New("the nfs server runs only in the linux guest")

// New fails: the server needs Linux file handles.
func New(opts Options) (*Server, error) { return nil, ErrUnsupported }

// Serve fails.
func (s *Server) Serve(l net.Listener) error { return ErrUnsupported }

// Close does nothing.
func (s *Server) Close() error { return nil }
