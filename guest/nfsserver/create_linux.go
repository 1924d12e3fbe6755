package nfsserver

import (
	"encoding/binary"
	"strconv"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// create makes a regular file. UNCHECKED opens an existing one, GUARDED
// refuses it, EXCLUSIVE stores the client's verifier in the times so a
// retransmission is recognised (and Office's saves on macOS work).
func (s *Server) create(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dh := fh(r)
	name := r.String(4096)
	how := r.Uint32()
	var a sattr
	var verf []byte
	switch how {
	case createUnchecked, createGuarded:
		a = readSattr(r)
	case createExclusive:
		verf = r.Fixed(8)
	default:
		r.Fixed(-1) // garbage
	}
	if r.Err() != nil {
		return
	}
	e := s.beginEntry(w, dh, name)
	if e == nil {
		return
	}
	defer e.close()
	fd, created, err := openNew(e.dfd, name, how, a.mode, verf)
	if err != nil {
		e.fail(err)
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
	if how != createExclusive {
		a.uid, a.gid = nil, nil // ownership comes from the mapping, not the client
		if s.opts.FixedAttrs {
			a.mode = nil // FAT and NTFS give every new file the same mode: so does a local mount
		}
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
		if a.changes() {
			if err := s.apply(fd, nil, a); err != nil {
				e.fail(err)
				return
			}
			st, _ = fstat(fd)
		}
	}
	nh, _ := s.table.At(fd, "")
	if how == createExclusive && created && s.opts.FixedAttrs && nh != nil {
		s.fresh.add(nh)
	}
	e.done(nh, st)
}

// openNew opens name in dfd for CREATE, always trying an exclusive create
// first so it knows whether it created the file.
func openNew(dfd int, name string, how uint32, mode *uint32, verf []byte) (fd int, created bool, err error) {
	perm := uint32(0o644)
	if mode != nil {
		perm = *mode & 0o7777
	}
	if how == createExclusive {
		perm = 0o600
	}
	const open = unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err = unix.Openat(dfd, name, open|unix.O_CREAT|unix.O_EXCL, perm)
	created = err == nil
	switch {
	case how == createUnchecked && err == unix.EEXIST:
		fd, err = unix.Openat(dfd, name, open, 0) // an existing file is fine (a symlink is not: ELOOP)
	case how == createExclusive && err == unix.EEXIST:
		// A retransmitted exclusive CREATE: same verifier means it was ours.
		var st unix.Stat_t
		if e := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); e == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFREG && verfMatches(&st, verf) {
			fd, err = unix.Openat(dfd, name, open, 0)
		}
	case how == createExclusive && err == nil:
		ts := []unix.Timespec{{Sec: int64(binary.BigEndian.Uint32(verf[0:4]))}, {Sec: int64(binary.BigEndian.Uint32(verf[4:8]))}}
		if err = unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts, 0); err != nil {
			unix.Close(fd)
		}
	}
	return fd, created, err
}

func verfMatches(st *unix.Stat_t, verf []byte) bool {
	return uint32(st.Atim.Sec) == binary.BigEndian.Uint32(verf[0:4]) &&
		uint32(st.Mtim.Sec) == binary.BigEndian.Uint32(verf[4:8])
}
