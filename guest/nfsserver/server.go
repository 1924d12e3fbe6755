// Package nfsserver serves a mounted filesystem over NFSv3 from inside the guest.
//
// go-nfs is the protocol core. Around it this package assembles a contained
// filesystem, persistent file handles, an RPC front end that runs the requests
// of one connection in parallel, and honest durability (see SECURITY.md for
// the access model).
package nfsserver

import (
	"errors"
	"net"
	"time"
)

// Options configures a Server.
type Options struct {
	Root     string // path of the mounted filesystem in the guest, e.g. /mnt/data
	ReadOnly bool
	// ClientUID/GID: the host user who mounted (uid 501 on a Mac). Files owned
	// by the drive owner appear owned by this user, and only this uid and root
	// may use the server.
	ClientUID, ClientGID uint32
	// DriveUID/GID: ids given to files created over NFS; OwnerFromRoot means
	// use the owner of Root instead.
	DriveUID, DriveGID uint32
	OwnerFromRoot      bool
	PassThroughIDs     bool                             // --owner none: no id mapping at all
	Logf               func(format string, args ...any) // user-facing log lines (may be nil)
	// PassThroughTimeout bounds each call handed to go-nfs (0: 30 s); after
	// it the client gets SYSTEM_ERR and go-nfs's connection is replaced.
	PassThroughTimeout time.Duration
	// OnUnmount is told when a client sends MOUNT UMNT/UMNTALL (may be nil).
	OnUnmount func(client string)
}

// ErrClosed is returned by Serve when called after Close.
var ErrClosed = errors.New("nfs server closed")

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Addr is a convenience for callers that log where the server listens.
func Addr(l net.Listener) string { return l.Addr().String() }
