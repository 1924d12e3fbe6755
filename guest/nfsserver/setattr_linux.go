package nfsserver

import (
	"strconv"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

func (s *Server) getattr(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	if r.Err() != nil {
		return
	}
	st, err := s.statHandle(h)
	w.Uint32(status(err))
	if err == nil {
		s.putFattr(w, st)
	}
}

// sattr3 as decoded from the wire.
type sattr struct {
	mode, uid, gid *uint32
	size           *uint64
	atime, mtime   unix.Timespec
}

func readTimeHow(r *xdr.Reader) unix.Timespec {
	switch r.Uint32() {
	case setToServer:
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	case setToClientTime:
		sec, nsec := r.Uint32(), r.Uint32()
		return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec % 1e9)}
	}
	return unix.Timespec{Nsec: unix.UTIME_OMIT}
}

func readSattr(r *xdr.Reader) sattr {
	var a sattr
	if r.Bool() {
		v := r.Uint32()
		a.mode = &v
	}
	if r.Bool() {
		v := r.Uint32()
		a.uid = &v
	}
	if r.Bool() {
		v := r.Uint32()
		a.gid = &v
	}
	if r.Bool() {
		v := r.Uint64()
		a.size = &v
	}
	a.atime = readTimeHow(r)
	a.mtime = readTimeHow(r)
	return a
}

// apply sets attributes on the object behind fd (O_PATH or real), never
// following a symlink. h reopens the file for truncation.
func (s *Server) apply(fd int, h []byte, a sattr) error {
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := s.checkFixedAttrs(fd, h, &a); err != nil {
		return err
	}
	if a.uid != nil || a.gid != nil {
		uid, gid := -1, -1
		cu, cg := uint32(0), uint32(0)
		if a.uid != nil {
			cu = *a.uid
		}
		if a.gid != nil {
			cg = *a.gid
		}
		mu, mg := s.ids.in(cu, cg)
		if a.uid != nil {
			uid = int(mu)
		}
		if a.gid != nil {
			gid = int(mg)
		}
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if a.mode != nil {
		if err := chmodFd(fd, *a.mode); err != nil {
			return err
		}
	}
	if a.size != nil {
		st, err := fstat(fd)
		if err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return unix.EINVAL
		}
		if err := unix.Truncate(proc, int64(*a.size)); err != nil {
			return err
		}
	}
	if a.atime.Nsec != unix.UTIME_OMIT || a.mtime.Nsec != unix.UTIME_OMIT {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, proc, []unix.Timespec{a.atime, a.mtime}, 0); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) setattr(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	a := readSattr(r)
	var guard *unix.Timespec
	if r.Bool() {
		sec, nsec := r.Uint32(), r.Uint32()
		guard = &unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
	}
	if r.Err() != nil {
		return
	}
	fd, _, err := s.table.Open(h, unix.O_PATH)
	if err != nil {
		w.Uint32(status(err))
		s.wcc(w, nil, nil)
		return
	}
	defer unix.Close(fd)
	pre, err := fstat(fd)
	if err == nil && guard != nil && (uint32(pre.Ctim.Sec) != uint32(guard.Sec) || uint32(pre.Ctim.Nsec) != uint32(guard.Nsec)) {
		w.Uint32(nfsErrNotSync)
		s.wcc(w, pre, pre)
		return
	}
	if err == nil && s.opts.ReadOnly {
		err = unix.EROFS
	}
	if err == nil {
		err = s.apply(fd, h, a)
	}
	if err == nil && a.changes() {
		err = s.commitInode(fd)
	}
	post, _ := fstat(fd)
	w.Uint32(status(err))
	s.wcc(w, pre, post)
}

// changes reports whether a sattr3 sets anything.
func (a sattr) changes() bool {
	return a.mode != nil || a.uid != nil || a.gid != nil || a.size != nil ||
		a.atime.Nsec != unix.UTIME_OMIT || a.mtime.Nsec != unix.UTIME_OMIT
}

// commitInode makes a change to the inode behind fd (O_PATH) durable before
// the reply, as knfsd's sync export does: NFSv3 has no COMMIT for
// attributes, so a client that got the reply may forget the change. A
// regular file or directory is reopened through /proc and fsynced; other
// types (symlinks, devices, FIFOs, sockets) cannot be opened without side
// effects, so the whole filesystem is synced for them (rare).
func (s *Server) commitInode(fd int) error {
	st, err := fstat(fd)
	if err != nil {
		return err
	}
	fsyncs.Add(1)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
		rfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(rfd)
		err = unix.Fsync(rfd)
	default:
		err = s.Sync()
	}
	if err == nil && testHookCommitted != nil {
		testHookCommitted(st.Ino)
	}
	return err
}

// testHookCommitted is told the inode a SETATTR made durable, before the reply.
var testHookCommitted func(ino uint64)
