package rpcfront

import (
	"errors"
	"fmt"

	"github.com/luksmount/luksmount/guest/xdr"
)

// Auth flavors.
const (
	AuthNone = 0
	AuthSys  = 1
)

// accept_stat values (RFC 5531; go-nfs numbers these one too low).
const (
	Success      = 0
	ProgUnavail  = 1
	ProgMismatch = 2
	ProcUnavail  = 3
	GarbageArgs  = 4
	SystemErr    = 5
)

// AuthTooWeak is the auth_stat for a credential flavour the server does not accept.
const AuthTooWeak = 5

// ErrNotCall means the record is not an RPC call message.
var ErrNotCall = errors.New("rpc record is not a call")

// Call is one decoded RPC call.
type Call struct {
	XID        uint32
	RPCVers    uint32
	Prog, Vers uint32
	Proc       uint32
	CredFlavor uint32
	// AUTH_SYS credential fields, valid when CredFlavor == AuthSys and CredOK.
	UID, GID uint32
	GIDs     []uint32
	CredOK   bool
	Args     []byte // procedure arguments (aliases Record)
	Remote   string // client address
}

// ParseCall decodes the call header of rec. If the error is not ErrNotCall
// and XID was read, the caller should reply GARBAGE_ARGS.
func ParseCall(rec []byte) (*Call, error) {
	r := xdr.NewReader(rec)
	c := &Call{}
	c.XID = r.Uint32()
	mtype := r.Uint32()
	if r.Err() != nil {
		return nil, fmt.Errorf("short rpc header: %w", r.Err())
	}
	if mtype != 0 {
		return nil, ErrNotCall
	}
	c.RPCVers = r.Uint32()
	c.Prog = r.Uint32()
	c.Vers = r.Uint32()
	c.Proc = r.Uint32()
	c.CredFlavor = r.Uint32()
	cred := r.Opaque(400)
	r.Uint32() // verifier flavor
	r.Opaque(400)
	if r.Err() != nil {
		return c, fmt.Errorf("malformed rpc header: %w", r.Err())
	}
	c.Args = r.Remaining()
	if c.CredFlavor == AuthSys {
		cr := xdr.NewReader(cred)
		cr.Uint32()    // stamp
		cr.Opaque(255) // machine name
		c.UID = cr.Uint32()
		c.GID = cr.Uint32()
		n := cr.Uint32()
		if n <= 16 {
			for i := uint32(0); i < n; i++ {
				c.GIDs = append(c.GIDs, cr.Uint32())
			}
			c.CredOK = cr.Err() == nil
		}
	}
	return c, nil
}

func replyHeader(xid uint32) *xdr.Writer {
	w := &xdr.Writer{B: make([]byte, 0, 128)}
	w.Uint32(xid)
	w.Uint32(1) // REPLY
	return w
}

// Accepted starts a MSG_ACCEPTED reply with the given accept_stat; append the body to W.B.
func Accepted(xid uint32, stat uint32) *xdr.Writer {
	return &xdr.Writer{B: AppendAccepted(make([]byte, 0, 128), xid, stat)}
}

// AppendAccepted appends a MSG_ACCEPTED reply header to dst, for callers
// that size the reply buffer themselves.
func AppendAccepted(dst []byte, xid uint32, stat uint32) []byte {
	w := xdr.Writer{B: dst}
	w.Uint32(xid)
	w.Uint32(1) // REPLY
	w.Uint32(0) // MSG_ACCEPTED
	w.Uint32(AuthNone)
	w.Uint32(0) // empty verifier
	w.Uint32(stat)
	return w.B
}

// ProgMismatchReply tells the client which versions of the program exist.
func ProgMismatchReply(xid, low, high uint32) []byte {
	w := Accepted(xid, ProgMismatch)
	w.Uint32(low)
	w.Uint32(high)
	return w.B
}

// AuthErrorReply is a MSG_DENIED/AUTH_ERROR reply.
func AuthErrorReply(xid, authStat uint32) []byte {
	w := replyHeader(xid)
	w.Uint32(1) // MSG_DENIED
	w.Uint32(1) // AUTH_ERROR
	w.Uint32(authStat)
	return w.B
}

// RPCMismatchReply is a MSG_DENIED/RPC_MISMATCH reply (we speak RPC version 2 only).
func RPCMismatchReply(xid uint32) []byte {
	w := replyHeader(xid)
	w.Uint32(1) // MSG_DENIED
	w.Uint32(0) // RPC_MISMATCH
	w.Uint32(2)
	w.Uint32(2)
	return w.B
}
