package nfsserver

import (
	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// LOOKUP, ACCESS, REMOVE, RMDIR and RENAME are answered here, not by go-nfs:
// go-nfs maps every unexpected errno (ENOTEMPTY, EEXIST, EISDIR...) to
// NFS3ERR_IO, which the client turns into EIO, and it resolves each call
// through full-path walks and extra stats. Here each is one *at syscall on
// the directory's fd, acting on the name itself, never a symlink's target.

func (s *Server) lookup(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dh := fh(r)
	name := string(r.Opaque(maxIO))
	if r.Err() != nil {
		return
	}
	dof, err := s.paths.get(dh)
	var dst *unix.Stat_t
	if err == nil {
		defer s.paths.put(dof)
		dst, err = fstat(dof.fd)
	}
	switch {
	case err != nil:
	case dst.Nlink == 0:
		s.paths.forget(dof)
		err = nfshandle.ErrStale
	case dst.Mode&unix.S_IFMT != unix.S_IFDIR:
		err = unix.ENOTDIR
	}
	if err != nil {
		w.Uint32(status(err))
		s.postOpAttr(w, nil)
		return
	}
	dfd := dof.fd
	var fd int
	switch {
	case name == ".":
		fd, err = unix.Dup(dfd)
	case name == ".." && s.isRoot(dh):
		fd, err = unix.Dup(dfd) // the root is its own parent: never leave the tree
	case name == "..":
		fd, err = unix.Openat(dfd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	default:
		if err = checkName(name); err == nil {
			fd, err = unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		w.Uint32(status(err))
		s.postOpAttr(w, dst)
		return
	}
	defer unix.Close(fd)
	st, err := fstat(fd)
	var h []byte
	if err == nil {
		h, err = s.table.At(fd, "")
	}
	if err != nil {
		w.Uint32(status(err))
		s.postOpAttr(w, dst)
		return
	}
	w.Uint32(nfsOK)
	w.Opaque(h)
	s.postOpAttr(w, st)
	s.postOpAttr(w, dst)
}

// ACCESS bits (RFC 1813 3.3.4).
const (
	accessRead    = 0x01
	accessLookup  = 0x02
	accessExecute = 0x20
)

// access grants what the client asks (the served tree has one user: the
// one who mounted, checked in authorize), minus writes on a read-only export.
func (s *Server) access(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	mask := r.Uint32()
	if r.Err() != nil {
		return
	}
	st, err := s.statHandle(h)
	w.Uint32(status(err))
	s.postOpAttr(w, st)
	if err != nil {
		return
	}
	if s.opts.ReadOnly {
		mask &= accessRead | accessLookup | accessExecute
	}
	w.Uint32(mask)
}

func (s *Server) remove(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	s.unlink(r, w, 0)
}

func (s *Server) rmdir(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	s.unlink(r, w, unix.AT_REMOVEDIR)
}

func (s *Server) unlink(r *xdr.Reader, w *xdr.Writer, flags int) {
	dh := fh(r)
	name := string(r.Opaque(maxIO))
	if r.Err() != nil {
		return
	}
	if s.opts.ReadOnly {
		w.Uint32(nfsErrROFS)
		s.wcc(w, nil, nil)
		return
	}
	dfd, pre, err := s.openDirPath(dh)
	if err != nil {
		w.Uint32(status(err))
		s.wcc(w, nil, nil)
		return
	}
	defer unix.Close(dfd)
	if err = checkName(name); err != nil {
		if flags != 0 && name == "." {
			err = unix.EINVAL
		} else if flags != 0 && name == ".." {
			err = unix.ENOTEMPTY
		}
		w.Uint32(status(err))
		s.wcc(w, pre, pre)
		return
	}
	// Close our cached fd first: unlinking an open inode makes ext4 put it
	// on the orphan list and free it later, two more journaled updates.
	if victim, err := s.table.At(dfd, name); err == nil {
		s.forgetHandle(victim)
	}
	err = unix.Unlinkat(dfd, name, flags)
	if err == nil {
		s.table.Removed(dfd, name)
		s.syncDir(dfd)
	}
	post, _ := fstat(dfd)
	w.Uint32(status(err))
	s.wcc(w, pre, post)
}

func (s *Server) rename(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	fromH := fh(r)
	fromName := string(r.Opaque(maxIO))
	toH := fh(r)
	toName := string(r.Opaque(maxIO))
	if r.Err() != nil {
		return
	}
	var fromPre, fromPost, toPre, toPost *unix.Stat_t
	reply := func(err error) {
		w.Uint32(status(err))
		s.wcc(w, fromPre, fromPost)
		s.wcc(w, toPre, toPost)
	}
	if s.opts.ReadOnly {
		reply(unix.EROFS)
		return
	}
	fromFd, st, err := s.openDirPath(fromH)
	if err != nil {
		reply(err)
		return
	}
	defer unix.Close(fromFd)
	fromPre, fromPost = st, st
	toFd, st, err := s.openDirPath(toH)
	if err != nil {
		reply(err)
		return
	}
	defer unix.Close(toFd)
	toPre, toPost = st, st
	if err = checkName(fromName); err == nil {
		err = checkName(toName)
	}
	if err != nil {
		reply(err)
		return
	}
	if replaced, err := s.table.At(toFd, toName); err == nil {
		if moved, _ := s.table.At(fromFd, fromName); string(replaced) != string(moved) {
			s.forgetHandle(replaced) // as in unlink: no orphan inode
		}
	}
	err = unix.Renameat(fromFd, fromName, toFd, toName)
	if err == nil {
		s.table.Renamed(fromFd, fromName, toFd, toName)
		s.syncDir(toFd)
		s.syncDir(fromFd)
	}
	fromPost, _ = fstat(fromFd)
	toPost, _ = fstat(toFd)
	reply(err)
}

// openDirPath opens a directory handle as O_PATH for *at calls and stats it.
// A handle that is not a directory is NOTDIR.
func (s *Server) openDirPath(h []byte) (int, *unix.Stat_t, error) {
	fd, _, err := s.table.Open(h, unix.O_PATH)
	if err != nil {
		return -1, nil, err
	}
	st, err := fstat(fd)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		err = unix.ENOTDIR
	}
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, st, nil
}

func (s *Server) isRoot(h []byte) bool { return string(h) == string(s.rootH) }

// readlink reads the link itself by handle (go-nfs needed its path, which a
// link whose dentry was evicted does not have).
func (s *Server) readlink(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	if r.Err() != nil {
		return
	}
	fd, _, err := s.table.Open(h, unix.O_PATH)
	if err != nil {
		w.Uint32(status(err))
		s.postOpAttr(w, nil)
		return
	}
	defer unix.Close(fd)
	st, err := fstat(fd)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		err = unix.EINVAL
	}
	buf := make([]byte, maxSymlinkTarget+1)
	n := 0
	if err == nil {
		n, err = unix.Readlinkat(fd, "", buf)
	}
	w.Uint32(status(err))
	s.postOpAttr(w, st)
	if err == nil {
		w.Opaque(buf[:n])
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
	if err == nil && s.table.UsesPaths() {
		err = unix.EOPNOTSUPP // path handles name a file by its one path (nfshandle doc)
	}
	if err == nil {
		if err = unix.Linkat(fd, "", dfd, name, unix.AT_EMPTY_PATH); err == nil {
			s.syncDir(dfd)
		}
	}
	fst, _ = fstat(fd)
	post, _ := fstat(dfd)
	fail(err, fst, pre, post)
}
