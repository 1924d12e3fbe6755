package nfsserver

import (
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// MKDIR and SYMLINK are answered here, not by go-nfs: go-nfs masks a new
// directory's mode with 0777 (dropping setuid, setgid and sticky) and joins
// names into paths.

// maxSymlinkTarget is PATH_MAX: Linux refuses longer targets anyway.
const maxSymlinkTarget = 4096

func (s *Server) mkdir(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dh := fh(r)
	name := string(r.Opaque(maxIO))
	a := readSattr(r)
	if r.Err() != nil {
		return
	}
	s.makeObject(w, dh, name, func(dfd int) error {
		// mkdir(2) strips setuid/setgid and applies the umask; the exact
		// mode is set once the owner is right.
		return unix.Mkdirat(dfd, name, 0o700)
	}, func(fd int, st *unix.Stat_t) error {
		mode := uint32(0o755)
		if a.mode != nil {
			mode = *a.mode & 0o7777
		}
		// Keep the setgid bit a directory inherits from a setgid parent.
		mode |= st.Mode & unix.S_ISGID
		if s.opts.FixedAttrs {
			mode = st.Mode & 0o7777 // what the filesystem gives (FAT: its dmask)
		}
		if err := chmodFd(fd, mode); err != nil {
			return err
		}
		return s.apply(fd, nil, sattr{atime: a.atime, mtime: a.mtime})
	})
}

func (s *Server) symlink(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dh := fh(r)
	name := string(r.Opaque(maxIO))
	a := readSattr(r)
	target := string(r.Opaque(maxIO))
	if r.Err() != nil {
		return
	}
	s.makeObject(w, dh, name, func(dfd int) error {
		if len(target) > maxSymlinkTarget {
			return unix.ENAMETOOLONG
		}
		return unix.Symlinkat(target, dfd, name)
	}, func(fd int, st *unix.Stat_t) error {
		// A Linux symlink's mode is always 0777: there is nothing to set.
		if a.atime.Nsec == unix.UTIME_OMIT && a.mtime.Nsec == unix.UTIME_OMIT {
			return nil
		}
		return unix.UtimesNanoAt(fd, "", []unix.Timespec{a.atime, a.mtime}, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	})
}

// newEntry is a call that makes a directory entry (CREATE, MKDIR, SYMLINK,
// MKNOD), between its preamble and its reply.
type newEntry struct {
	s   *Server
	w   *xdr.Writer
	dfd int          // the parent directory
	pre *unix.Stat_t // the parent before the change, for wcc_data
}

// beginEntry is the preamble they share: refuse on a read-only export, open
// the parent, refuse names that are not one new entry. On failure it has
// written the reply and returns nil; otherwise the caller must close e.
func (s *Server) beginEntry(w *xdr.Writer, dh []byte, name string) *newEntry {
	fail := func(err error, pre *unix.Stat_t) *newEntry {
		w.Uint32(status(err))
		s.wcc(w, pre, pre)
		return nil
	}
	if s.opts.ReadOnly {
		return fail(unix.EROFS, nil)
	}
	dfd, pre, err := s.openDir(dh)
	if err != nil {
		return fail(err, nil)
	}
	if err := checkName(name); err != nil {
		unix.Close(dfd)
		if name == "." || name == ".." {
			err = unix.EEXIST
		}
		return fail(err, pre)
	}
	return &newEntry{s: s, w: w, dfd: dfd, pre: pre}
}

func (e *newEntry) close() { unix.Close(e.dfd) }

// fail writes a failure reply: the status and the parent's wcc_data.
func (e *newEntry) fail(err error) {
	post, _ := fstat(e.dfd)
	e.w.Uint32(status(err))
	e.s.wcc(e.w, e.pre, post)
}

// done writes the success reply (diropres3): the new object's handle and
// attributes, and the parent's wcc_data.
func (e *newEntry) done(nh []byte, st *unix.Stat_t) {
	e.s.syncDir(e.dfd)
	post, _ := fstat(e.dfd)
	e.w.Uint32(nfsOK)
	e.w.Bool(nh != nil)
	if nh != nil {
		e.w.Opaque(nh)
	}
	e.s.postOpAttr(e.w, st)
	e.s.wcc(e.w, e.pre, post)
}

// makeObject creates name in the directory dh with mk, gives it the drive
// owner, runs set on an O_PATH fd of it, and writes a diropres3.
func (s *Server) makeObject(w *xdr.Writer, dh []byte, name string, mk func(dfd int) error, set func(fd int, st *unix.Stat_t) error) {
	e := s.beginEntry(w, dh, name)
	if e == nil {
		return
	}
	defer e.close()
	if err := mk(e.dfd); err != nil {
		e.fail(err)
		return
	}
	fd, err := unix.Openat(e.dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		defer unix.Close(fd)
		u, g := s.ids.owner()
		err = unix.Fchownat(fd, "", int(u), int(g), unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	}
	var st *unix.Stat_t
	if err == nil {
		st, err = fstat(fd)
	}
	if err == nil {
		err = set(fd, st)
	}
	if err != nil {
		// Left in place: removing it could race with a client replacing it.
		e.fail(err)
		return
	}
	st, _ = fstat(fd)
	nh, _ := s.table.At(e.dfd, name)
	e.done(nh, st)
}

// mknodKinds maps the ftype3 values MKNOD creates to their S_IF type.
var mknodKinds = map[uint32]uint32{nf3Blk: unix.S_IFBLK, nf3Chr: unix.S_IFCHR, nf3Sock: unix.S_IFSOCK, nf3FIFO: unix.S_IFIFO}

// mknod creates a device node, FIFO or socket (what a backup of a Linux
// system holds) with the mode, owner, times and device numbers asked for.
// Regular files, directories and symlinks have their own procedures, and
// any other type is no type at all: both get BADTYPE, never an OK for
// nothing created.
func (s *Server) mknod(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dh := fh(r)
	name := string(r.Opaque(maxIO))
	typ := r.Uint32()
	kind, known := mknodKinds[typ]
	var a sattr
	var major, minor uint32
	if known {
		a = readSattr(r)
	}
	if typ == nf3Blk || typ == nf3Chr {
		major, minor = r.Uint32(), r.Uint32()
	}
	if r.Err() != nil {
		return
	}
	if !known {
		w.Uint32(nfsErrBadType)
		s.wcc(w, nil, nil)
		return
	}
	s.makeObject(w, dh, name, func(dfd int) error {
		// Created private; the exact mode is set once the owner is right.
		return unix.Mknodat(dfd, name, kind|0o600, int(unix.Mkdev(major, minor)))
	}, func(fd int, st *unix.Stat_t) error {
		mode := uint32(0o644)
		if a.mode != nil {
			mode = *a.mode & 0o7777
		}
		a.mode, a.size = &mode, nil
		return s.apply(fd, nil, a)
	})
}
