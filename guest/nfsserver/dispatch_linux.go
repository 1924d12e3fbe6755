package nfsserver

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

func status(err error) uint32 {
	if err == nil {
		return nfsOK
	}
	if errors.Is(err, nfshandle.ErrStale) {
		return nfsErrStale
	}
	var en unix.Errno
	if !errors.As(err, &en) {
		return nfsErrIO
	}
	switch en {
	case unix.EPERM:
		return nfsErrPerm
	case unix.ENOENT:
		return nfsErrNoEnt
	case unix.EACCES:
		return nfsErrAcces
	case unix.EEXIST:
		return nfsErrExist
	case unix.EXDEV:
		return nfsErrXDev
	case unix.ENOTDIR:
		return nfsErrNotDir
	case unix.EISDIR:
		return nfsErrIsDir
	case unix.EINVAL, unix.ELOOP:
		return nfsErrInval
	case unix.EFBIG:
		return nfsErrFBig
	case unix.ENOSPC:
		return nfsErrNoSpc
	case unix.EROFS:
		return nfsErrROFS
	case unix.EMLINK:
		return nfsErrMLink
	case unix.ENAMETOOLONG:
		return nfsErrNameLong
	case unix.ENOTEMPTY:
		return nfsErrNotEmpty
	case unix.EDQUOT:
		return nfsErrDQuot
	case unix.ESTALE:
		return nfsErrStale
	case unix.EOPNOTSUPP:
		return nfsErrNotSupp
	}
	return nfsErrIO
}

type procFunc func(s *Server, c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer)

// nfsProcTable answers the NFSv3 procedures (NULL is answered in Dispatch).
var nfsProcTable = [nfsProcs]procFunc{
	procGetattr:     (*Server).getattr,
	procSetattr:     (*Server).setattr,
	procLookup:      (*Server).lookup,
	procAccess:      (*Server).access,
	procReadlink:    (*Server).readlink,
	procRead:        (*Server).read,
	procWrite:       (*Server).write,
	procCreate:      (*Server).create,
	procMkdir:       (*Server).mkdir,
	procSymlink:     (*Server).symlink,
	procMknod:       (*Server).mknod,
	procRemove:      (*Server).remove,
	procRmdir:       (*Server).rmdir,
	procRename:      (*Server).rename,
	procLink:        (*Server).link,
	procReaddir:     (*Server).readdir,
	procReaddirplus: (*Server).readdirplus,
	procFsstat:      (*Server).fsstat,
	procFsinfo:      (*Server).fsinfo,
	procPathconf:    (*Server).pathconf,
	procCommit:      (*Server).commit,
}

// Dispatch answers one RPC call (rpcfront.Dispatcher).
func (s *Server) Dispatch(ctx context.Context, c *rpcfront.Call) []byte {
	if testHookDispatch != nil {
		testHookDispatch(c)
	}
	switch c.Prog {
	case progNFS:
		if c.Vers != 3 {
			return rpcfront.ProgMismatchReply(c.XID, 3, 3)
		}
		if c.Proc == procNull {
			return rpcfront.Accepted(c.XID, rpcfront.Success).B
		}
		if c.Proc >= nfsProcs {
			return rpcfront.Accepted(c.XID, rpcfront.ProcUnavail).B
		}
		defer s.calls.add(c.Proc, time.Now())
		return s.run(nfsProcTable[c.Proc], c)
	case progMount:
		if c.Vers < 1 || c.Vers > 3 {
			return rpcfront.ProgMismatchReply(c.XID, 1, 3)
		}
		// MNT's reply changed in v3; the other procedures are the same in v1-v3.
		if f, ok := mountProcTable[c.Proc]; ok && (c.Proc != mountMnt || c.Vers == 3) {
			return s.run(f, c)
		}
		return rpcfront.Accepted(c.XID, rpcfront.ProcUnavail).B
	}
	return rpcfront.Accepted(c.XID, rpcfront.ProgUnavail).B
}

// OrderKey makes the calls that change a file's data or size (SETATTR,
// WRITE, COMMIT) run in arrival order per file handle (rpcfront.Orderer), so
// a retransmitted or overlapping WRITE can never land after a later one.
// The cost is small: buffered writes to one inode serialize in the kernel
// anyway.
func (s *Server) OrderKey(c *rpcfront.Call) string {
	if c.Prog != progNFS || c.Vers != 3 || (c.Proc != procSetattr && c.Proc != procWrite && c.Proc != procCommit) {
		return ""
	}
	h := fh(xdr.NewReader(c.Args))
	if len(h) == 0 {
		return ""
	}
	return string(h)
}

// callIO is a call's decoder and reply, allocated together.
type callIO struct {
	r xdr.Reader
	w xdr.Writer
}

// run decodes and answers one call into a (recycled) reply buffer sized for
// it, so a READ's data lands in its final place with no growing or copying.
func (s *Server) run(f procFunc, c *rpcfront.Call) []byte {
	io := &callIO{r: *xdr.NewReader(c.Args)}
	io.w.B = rpcfront.AppendAccepted(rpcfront.GetBuffer(512+replyData(c)), c.XID, rpcfront.Success)
	f(s, c, &io.r, &io.w)
	if io.r.Err() != nil {
		return rpcfront.Accepted(c.XID, rpcfront.GarbageArgs).B
	}
	return io.w.B
}

func fh(r *xdr.Reader) []byte { return r.Opaque(nfshandle.MaxSize) }

// stat of a handle, without following a symlink, through the cached O_PATH
// fd: one fstat. An inode unlinked since is STALE, as Open would say.
func (s *Server) statHandle(h []byte) (*unix.Stat_t, error) {
	of, err := s.paths.get(h)
	if err != nil {
		return nil, err
	}
	defer s.paths.put(of)
	st, err := fstat(of.fd)
	if err == nil && st.Nlink == 0 {
		s.paths.forget(of)
		return nil, nfshandle.ErrStale
	}
	return st, err
}

// forgetHandle drops the cached fds of a handle whose name was just removed
// or replaced, so they do not keep the inode (and its blocks) alive.
func (s *Server) forgetHandle(h []byte) {
	s.fds.forgetHandle(h)
	s.paths.forgetHandle(h)
}

func fstat(fd int) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// testHookDispatch lets tests stall or panic inside a call.
var testHookDispatch func(c *rpcfront.Call)

// fsyncs counts fsyncs done for COMMIT and stable WRITEs (tests check it).
var fsyncs atomic.Int64

// MaxReplySize is the most a call's reply can take (rpcfront.ReplySizer),
// reserved from its connection's memory before it runs: READ's data and
// READDIR's listing; every other reply fits in 4 KiB.
func (s *Server) MaxReplySize(c *rpcfront.Call) int { return 4<<10 + replyData(c) }

// replyData is the bulk a call asks for: READ's count, READDIR's maxcount.
func replyData(c *rpcfront.Call) int {
	if c.Prog != progNFS || c.Vers != 3 {
		return 0
	}
	r := xdr.NewReader(c.Args)
	switch c.Proc {
	case procRead:
		fh(r)
		r.Uint64()
		return int(min(r.Uint32(), maxIO))
	case procReaddir, procReaddirplus:
		fh(r)
		r.Uint64()
		r.Fixed(8)
		n := r.Uint32() // dircount, or maxcount for READDIRPLUS
		if c.Proc == procReaddirplus {
			n = r.Uint32()
		}
		return int(min(n, maxIO))
	}
	return 0
}
