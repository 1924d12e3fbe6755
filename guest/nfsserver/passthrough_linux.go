package nfsserver

import (
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// go-nfs trusts its input: it allocates whatever length an opaque claims (up
// to 4 GiB: a fatal out-of-memory in the guest), joins names containing "/"
// or ".." into paths (REMOVE of ".." in a/b removes a), and a panic in its
// connection goroutine would kill the agent, which is PID 1. So every call
// is decoded here first with the limits of RFC 1813, and go-nfs only ever
// sees a well-formed call without trailing bytes.

// passErrWords is how many zero words follow the status in each
// pass-through procedure's failure body (post_op_attr or wcc_data).
var passErrWords = map[uint32]int{
	5:  1,        // post_op_attr
	11: 2,        // wcc_data
	18: 1, 20: 1, // post_op_attr
}

// nameRule says what a procedure accepts as a file name besides plain names.
type nameRule int

const (
	plainName  nameRule = iota // "." and ".." are refused
	lookupName                 // "." and ".." are allowed
)

// checkedName decodes a filename3 and returns the NFS status to refuse it
// with (0 if fine).
func checkedName(r *xdr.Reader, rule nameRule) uint32 {
	name := r.Opaque(maxIO)
	if r.Err() != nil {
		return 0
	}
	if rule == lookupName && (string(name) == "." || string(name) == "..") {
		return 0
	}
	if err := checkName(string(name)); err != nil {
		return status(err)
	}
	return 0
}

// vetPassThrough decodes the arguments of proc (a procedure go-nfs answers)
// from r, leaving r.Offset() at their end. It returns a status to refuse the
// call with (0 to pass it on); r.Err() != nil means the arguments are garbage.
func vetPassThrough(proc uint32, r *xdr.Reader) uint32 {
	st := uint32(0)
	name := func(rule nameRule) {
		if s := checkedName(r, rule); st == 0 {
			st = s
		}
	}
	switch proc {
	case 18, 20: // FSSTAT, PATHCONF
		fh(r)
	case 11: // MKNOD
		fh(r)
		name(plainName)
		switch r.Uint32() {
		case 3, 4: // NF3CHR, NF3BLK: sattr3 + specdata3
			readSattr(r)
			r.Uint32()
			r.Uint32()
		case 6, 7: // NF3SOCK, NF3FIFO
			readSattr(r)
		case 1, 2, 5: // no arguments; go-nfs answers BADTYPE
		default:
			r.Fixed(-1) // not a ftype3: garbage
		}
	default:
		r.Fixed(-1) // not a procedure we pass through
	}
	return st
}

// passThrough vets a call and hands it to go-nfs.
func (s *Server) passThrough(c *rpcfront.Call) []byte {
	r := xdr.NewReader(c.Args)
	st := vetPassThrough(c.Proc, r)
	if r.Err() != nil {
		return rpcfront.Accepted(c.XID, rpcfront.GarbageArgs).B
	}
	if st != nfsOK {
		w := rpcfront.Accepted(c.XID, rpcfront.Success)
		w.Uint32(st)
		for i := 0; i < passErrWords[c.Proc]; i++ {
			w.Uint32(0)
		}
		return w.B
	}
	// The header as the client sent it, the arguments without trailing bytes.
	hdr := len(c.Record) - len(c.Args)
	rec := c.Record[:hdr+r.Offset()]
	rep, err := s.pool.RoundTrip(rec)
	if err != nil {
		s.opts.logf("nfs: go-nfs did not answer proc %d (answered SYSTEM_ERR, connection replaced): %v", c.Proc, err)
		return rpcfront.Accepted(c.XID, rpcfront.SystemErr).B
	}
	return s.patchReply(c.Proc, rep)
}
