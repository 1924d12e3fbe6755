package nfsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

const (
	progNFS   = 100003
	progMount = 100005
	maxIO     = 1 << 20 // rtmax/wtmax: what READ and WRITE truly accept
)

// NFSv3 status codes (RFC 1813).
const (
	nfsOK          = 0
	nfsErrPerm     = 1
	nfsErrNoEnt    = 2
	nfsErrIO       = 5
	nfsErrAcces    = 13
	nfsErrExist    = 17
	nfsErrXDev     = 18
	nfsErrNotDir   = 20
	nfsErrIsDir    = 21
	nfsErrInval    = 22
	nfsErrFBig     = 27
	nfsErrNoSpc    = 28
	nfsErrROFS     = 30
	nfsErrMLink    = 31
	nfsErrNameLong = 63
	nfsErrNotEmpty = 66
	nfsErrDQuot    = 69
	nfsErrStale    = 70
	nfsErrNotSync  = 10002
	nfsErrNotSupp  = 10004
	nfsErrTooSmall = 10005
	nfsErrBadType  = 10007
)

// stable_how
const (
	unstable = 0
	dataSync = 1
	fileSync = 2
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

// The NFSv3 procedures (NULL is answered in Dispatch).
var ownNFS = map[uint32]procFunc{
	1:  (*Server).getattr,
	2:  (*Server).setattr,
	3:  (*Server).lookup,
	4:  (*Server).access,
	5:  (*Server).readlink,
	6:  (*Server).read,
	7:  (*Server).write,
	8:  (*Server).create,
	9:  (*Server).mkdir,
	10: (*Server).symlink,
	11: (*Server).mknod,
	12: (*Server).remove,
	13: (*Server).rmdir,
	14: (*Server).rename,
	15: (*Server).link,
	16: (*Server).readdir,
	17: (*Server).readdirplus,
	18: (*Server).fsstat,
	19: (*Server).fsinfo,
	20: (*Server).pathconf,
	21: (*Server).commit,
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
		if c.Proc == 0 {
			return rpcfront.Accepted(c.XID, rpcfront.Success).B
		}
		defer s.calls.add(c.Proc, time.Now())
		if f, ok := ownNFS[c.Proc]; ok {
			return s.run(f, c)
		}
		return rpcfront.Accepted(c.XID, rpcfront.ProcUnavail).B
	case progMount:
		if c.Vers < 1 || c.Vers > 3 {
			return rpcfront.ProgMismatchReply(c.XID, 1, 3)
		}
		if f, ok := ownMount[c.Proc]; ok && (c.Proc != 1 || c.Vers == 3) {
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
	if c.Prog != progNFS || c.Vers != 3 || (c.Proc != 2 && c.Proc != 7 && c.Proc != 21) {
		return ""
	}
	h := fh(xdr.NewReader(c.Args))
	if len(h) == 0 {
		return ""
	}
	return string(h)
}

func (s *Server) run(f procFunc, c *rpcfront.Call) []byte {
	r := xdr.NewReader(c.Args)
	w := rpcfront.Accepted(c.XID, rpcfront.Success)
	f(s, c, r, w)
	if r.Err() != nil {
		return rpcfront.Accepted(c.XID, rpcfront.GarbageArgs).B
	}
	return w.B
}

func fh(r *xdr.Reader) []byte { return r.Opaque(nfshandle.MaxSize) }

// stat of a handle, without following a symlink.
func (s *Server) statHandle(h []byte) (*unix.Stat_t, error) {
	fd, _, err := s.table.Open(h, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return fstat(fd)
}

func fstat(fd int) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

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
	case 1:
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	case 2:
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

func (s *Server) read(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	off := r.Uint64()
	count := r.Uint32()
	if r.Err() != nil {
		return
	}
	count = min(count, maxIO)
	base := len(w.B)
	of, err := s.fds.get(h)
	if err != nil {
		w.Uint32(status(err))
		st, _ := s.statHandle(h)
		s.postOpAttr(w, st)
		return
	}
	defer s.fds.put(of)
	st, err := fstat(of.fd)
	if err == nil && st.Nlink == 0 {
		s.fds.forget(of)
		err = nfshandle.ErrStale
	}
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		err = unix.EISDIR
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = unix.EINVAL
		}
	}
	if err != nil {
		w.Uint32(status(err))
		s.postOpAttr(w, st)
		return
	}
	// Header first, data straight into the reply buffer.
	w.Uint32(nfsOK)
	s.postOpAttr(w, st)
	w.Uint32(0) // count, patched below
	countAt := len(w.B) - 4
	w.Uint32(0) // eof, patched below
	w.Uint32(0) // data length, patched below
	start := len(w.B)
	w.B = append(w.B, make([]byte, count+3)...)
	n := 0
	if off < uint64(st.Size) {
		for n < int(count) {
			m, err := unix.Pread(of.fd, w.B[start+n:start+int(count)], int64(off)+int64(n))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				w.B = w.B[:base]
				w.Uint32(status(err))
				s.postOpAttr(w, st)
				return
			}
			if m == 0 {
				break
			}
			n += m
		}
	}
	eof := off+uint64(n) >= uint64(st.Size)
	binary.BigEndian.PutUint32(w.B[countAt:], uint32(n))
	if eof {
		binary.BigEndian.PutUint32(w.B[countAt+4:], 1)
	}
	binary.BigEndian.PutUint32(w.B[countAt+8:], uint32(n))
	w.B = w.B[:start+n+(4-n%4)%4]
	for i := start + n; i < len(w.B); i++ {
		w.B[i] = 0
	}
}

func (s *Server) write(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	off := r.Uint64()
	count := r.Uint32()
	stable := r.Uint32()
	data := r.Opaque(maxIO)
	if r.Err() != nil {
		return
	}
	if int(count) < len(data) {
		data = data[:count]
	}
	if s.opts.ReadOnly {
		w.Uint32(nfsErrROFS)
		s.wcc(w, nil, nil)
		return
	}
	of, err := s.fds.get(h)
	if err != nil {
		w.Uint32(status(err))
		s.wcc(w, nil, nil)
		return
	}
	defer s.fds.put(of)
	pre, err := fstat(of.fd)
	if err == nil && pre.Nlink == 0 {
		s.fds.forget(of)
		err = nfshandle.ErrStale
	}
	if err == nil && pre.Mode&unix.S_IFMT != unix.S_IFREG {
		err = unix.EINVAL
	}
	n := 0
	for err == nil && n < len(data) {
		var m int
		m, err = unix.Pwrite(of.fd, data[n:], int64(off)+int64(n))
		if err == unix.EINTR {
			err = nil
			continue
		}
		n += m
	}
	committed := uint32(unstable)
	if err == nil {
		switch stable {
		case dataSync:
			fsyncs.Add(1)
			err = unix.Fdatasync(of.fd)
			committed = dataSync
		case fileSync:
			fsyncs.Add(1)
			err = unix.Fsync(of.fd)
			committed = fileSync
		}
	}
	post, _ := fstat(of.fd)
	w.Uint32(status(err))
	s.wcc(w, pre, post)
	if err == nil {
		w.Uint32(uint32(n))
		w.Uint32(committed)
		w.Fixed(s.verf[:])
	}
}

func (s *Server) commit(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	r.Uint64()
	r.Uint32()
	if r.Err() != nil {
		return
	}
	of, err := s.fds.get(h)
	if err != nil {
		w.Uint32(status(err))
		s.wcc(w, nil, nil)
		return
	}
	defer s.fds.put(of)
	fsyncs.Add(1)
	err = unix.Fsync(of.fd)
	post, _ := fstat(of.fd)
	w.Uint32(status(err))
	s.wcc(w, nil, post)
	if err == nil {
		w.Fixed(s.verf[:])
	}
}

// checkName refuses names that are not a single new directory entry.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return unix.EINVAL
	case len(name) > 255:
		return unix.ENAMETOOLONG
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return unix.EINVAL
		}
	}
	return nil
}

// openDir opens a directory handle for *at calls.
func (s *Server) openDir(h []byte) (int, *unix.Stat_t, error) {
	fd, _, err := s.table.Open(h, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return -1, nil, err
	}
	st, err := fstat(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, st, nil
}

func (s *Server) create(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dh := fh(r)
	name := r.String(4096)
	how := r.Uint32()
	var a sattr
	var verf []byte
	switch how {
	case 0, 1:
		a = readSattr(r)
	case 2:
		verf = r.Fixed(8)
	default:
		r.Fixed(-1) // garbage
	}
	if r.Err() != nil {
		return
	}
	fail := func(err error, pre, post *unix.Stat_t) {
		w.Uint32(status(err))
		s.wcc(w, pre, post)
	}
	if s.opts.ReadOnly {
		fail(unix.EROFS, nil, nil)
		return
	}
	dfd, pre, err := s.openDir(dh)
	if err != nil {
		fail(err, nil, nil)
		return
	}
	defer unix.Close(dfd)
	if err := checkName(name); err != nil {
		if name == "." || name == ".." {
			err = unix.EEXIST
		}
		fail(err, pre, pre)
		return
	}
	perm := uint32(0o644)
	if a.mode != nil {
		perm = *a.mode & 0o7777
	}
	if how == 2 {
		perm = 0o600
	}
	// Always try an exclusive create first so we know whether we created it.
	const open = unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := unix.Openat(dfd, name, open|unix.O_CREAT|unix.O_EXCL, perm)
	created := err == nil
	if how == 0 && err == unix.EEXIST {
		fd, err = unix.Openat(dfd, name, open, 0) // UNCHECKED: an existing file is fine (a symlink is not: ELOOP)
	}
	if how == 2 && err == unix.EEXIST {
		// A retransmitted exclusive CREATE: same verifier means it was ours.
		var st unix.Stat_t
		if e := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); e == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFREG && verfMatches(&st, verf) {
			fd, err = unix.Openat(dfd, name, open, 0)
		}
	} else if how == 2 && err == nil {
		ts := []unix.Timespec{{Sec: int64(binary.BigEndian.Uint32(verf[0:4]))}, {Sec: int64(binary.BigEndian.Uint32(verf[4:8]))}}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts, 0)
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		post, _ := fstat(dfd)
		fail(err, pre, post)
		return
	}
	defer unix.Close(fd)
	st, _ := fstat(fd)
	if created && st != nil {
		if u, g := s.ids.owner(); st.Uid != u || st.Gid != g {
			_ = unix.Fchown(fd, int(u), int(g))
			st, _ = fstat(fd)
		}
	}
	if how != 2 {
		a.uid, a.gid = nil, nil // ownership comes from the mapping, not the client
		// A new file is already empty and usually has the mode asked for:
		// skip the syscalls (this is the hot path of creating many files).
		if created && st != nil {
			if a.size != nil && *a.size == 0 {
				a.size = nil
			}
			if a.mode != nil && st.Mode&0o7777 == *a.mode&0o7777 {
				a.mode = nil
			}
		}
		if a.mode != nil || a.size != nil || a.atime.Nsec != unix.UTIME_OMIT || a.mtime.Nsec != unix.UTIME_OMIT {
			if err := s.apply(fd, nil, a); err != nil {
				post, _ := fstat(dfd)
				fail(err, pre, post)
				return
			}
			st, _ = fstat(fd)
		}
	}
	nh, _ := s.table.At(fd, "")
	post, _ := fstat(dfd)
	w.Uint32(nfsOK)
	w.Bool(nh != nil)
	if nh != nil {
		w.Opaque(nh)
	}
	s.postOpAttr(w, st)
	s.wcc(w, pre, post)
}

func verfMatches(st *unix.Stat_t, verf []byte) bool {
	return uint32(st.Atim.Sec) == binary.BigEndian.Uint32(verf[0:4]) &&
		uint32(st.Mtim.Sec) == binary.BigEndian.Uint32(verf[4:8])
}

func (s *Server) link(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	dh := fh(r)
	name := r.String(4096)
	if r.Err() != nil {
		return
	}
	fail := func(err error, fst, pre, post *unix.Stat_t) {
		w.Uint32(status(err))
		s.postOpAttr(w, fst)
		s.wcc(w, pre, post)
	}
	fd, _, err := s.table.Open(h, unix.O_PATH)
	if err != nil {
		fail(err, nil, nil, nil)
		return
	}
	defer unix.Close(fd)
	fst, _ := fstat(fd)
	dfd, pre, err := s.openDir(dh)
	if err != nil {
		fail(err, fst, nil, nil)
		return
	}
	defer unix.Close(dfd)
	if err = checkName(name); err == nil && s.opts.ReadOnly {
		err = unix.EROFS
	}
	if err == nil {
		err = unix.Linkat(fd, "", dfd, name, unix.AT_EMPTY_PATH)
	}
	fst, _ = fstat(fd)
	post, _ := fstat(dfd)
	fail(err, fst, pre, post)
}

func (s *Server) fsinfo(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	if r.Err() != nil {
		return
	}
	st, err := s.statHandle(h)
	w.Uint32(status(err))
	s.postOpAttr(w, st)
	if err != nil {
		return
	}
	w.Uint32(maxIO)    // rtmax
	w.Uint32(maxIO)    // rtpref
	w.Uint32(4096)     // rtmult
	w.Uint32(maxIO)    // wtmax
	w.Uint32(maxIO)    // wtpref
	w.Uint32(4096)     // wtmult
	w.Uint32(64 << 10) // dtpref
	w.Uint64(1<<63 - 1)
	w.Uint32(0) // time_delta: 1 ns
	w.Uint32(1)
	props := uint32(0x1 | 0x2 | 0x8) // LINK, SYMLINK, HOMOGENEOUS
	if !s.opts.ReadOnly {
		props |= 0x10 // CANSETTIME
	}
	w.Uint32(props)
}

// dirent64 walks a getdents64 buffer.
type dirent struct {
	ino  uint64
	off  uint64
	name string
}

func parseDirents(buf []byte, out []dirent) []dirent {
	for len(buf) >= 19 {
		ino := *(*uint64)(unsafe.Pointer(&buf[0]))
		off := *(*uint64)(unsafe.Pointer(&buf[8]))
		reclen := int(*(*uint16)(unsafe.Pointer(&buf[16])))
		if reclen < 19 || reclen > len(buf) {
			break
		}
		nb := buf[19:reclen]
		n := 0
		for n < len(nb) && nb[n] != 0 {
			n++
		}
		out = append(out, dirent{ino: ino, off: off, name: string(nb[:n])})
		buf = buf[reclen:]
	}
	return out
}

func (s *Server) readdir(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	s.readdirCommon(r, w, false)
}

func (s *Server) readdirplus(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	s.readdirCommon(r, w, true)
}

// readdirCommon lists a directory using the filesystem's own directory
// offsets as cookies (ext4's are hash based), so a cookie stays valid while
// the directory changes and no verifier is needed.
func (s *Server) readdirCommon(r *xdr.Reader, w *xdr.Writer, plus bool) {
	h := fh(r)
	cookie := r.Uint64()
	r.Fixed(8) // cookie verifier: ignored, cookies never expire
	dircount := r.Uint32()
	maxcount := dircount
	if plus {
		maxcount = r.Uint32()
	}
	if r.Err() != nil {
		return
	}
	dfd, dst, err := s.openDir(h)
	if err != nil {
		w.Uint32(status(err))
		s.postOpAttr(w, nil)
		return
	}
	defer unix.Close(dfd)
	if cookie != 0 {
		if _, err := unix.Seek(dfd, int64(cookie), 0); err != nil {
			w.Uint32(status(err))
			s.postOpAttr(w, dst)
			return
		}
	}
	maxcount = min(maxcount, maxIO)
	base := len(w.B)
	isRoot := false
	if rh := s.table.Root(); string(rh) == string(h) {
		isRoot = true
	}
	w.Uint32(nfsOK)
	s.postOpAttr(w, dst)
	w.Uint64(0) // cookie verifier
	used := len(w.B) + 8
	dused := 0
	n := 0
	eof := false
	buf := make([]byte, 32<<10)
	var ents []dirent
	var rerr error
pages:
	for {
		m, err := unix.Getdents(dfd, buf)
		if err != nil {
			rerr = err
			break
		}
		if m == 0 {
			eof = true
			break
		}
		ents = parseDirents(buf[:m], ents[:0])
		for _, e := range ents {
			ino := e.ino
			if e.name == ".." && isRoot {
				ino = dst.Ino
			}
			entry := &xdr.Writer{B: make([]byte, 0, 64+len(e.name))}
			entry.Bool(true)
			entry.Uint64(ino)
			entry.String(e.name)
			entry.Uint64(e.off)
			dsize := len(entry.B)
			if plus {
				if e.name == "." || e.name == ".." {
					entry.Bool(false)
					entry.Bool(false)
				} else {
					var st unix.Stat_t
					if err := unix.Fstatat(dfd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
						s.postOpAttr(entry, &st)
					} else {
						entry.Bool(false)
					}
					if eh, err := s.table.At(dfd, e.name); err == nil {
						entry.Bool(true)
						entry.Opaque(eh)
					} else {
						entry.Bool(false)
					}
				}
			}
			if used+len(entry.B) > int(maxcount) || (plus && dused+dsize > int(dircount)) {
				break pages
			}
			used += len(entry.B)
			dused += dsize
			w.B = append(w.B, entry.B...)
			n++
		}
	}
	if rerr != nil || n == 0 && !eof {
		w.B = w.B[:base]
		if rerr != nil {
			w.Uint32(status(rerr))
		} else {
			w.Uint32(nfsErrTooSmall)
		}
		s.postOpAttr(w, dst)
		return
	}
	w.Bool(false)
	w.Bool(eof)
}

// testHookDispatch lets tests stall or panic inside a call.
var testHookDispatch func(c *rpcfront.Call)

// testHookCommitted is told the inode a SETATTR made durable, before the reply.
var testHookCommitted func(ino uint64)

// fsyncs counts fsyncs done for COMMIT and stable WRITEs (tests check it).
var fsyncs atomic.Int64
