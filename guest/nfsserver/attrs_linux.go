package nfsserver

import (
	"strconv"

	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// idMap translates owners between the drive and the client.
type idMap struct {
	pass                 bool
	clientUID, clientGID uint32
	driveUID, driveGID   uint32
}

// out maps on-disk ids to the ids the client sees.
func (m *idMap) out(uid, gid uint32) (uint32, uint32) {
	if m.pass {
		return uid, gid
	}
	if uid == m.driveUID {
		uid = m.clientUID
	}
	if gid == m.driveGID {
		gid = m.clientGID
	}
	return uid, gid
}

// in maps ids a client sets to on-disk ids.
func (m *idMap) in(uid, gid uint32) (uint32, uint32) {
	if m.pass {
		return uid, gid
	}
	if uid == m.clientUID {
		uid = m.driveUID
	}
	if gid == m.clientGID {
		gid = m.driveGID
	}
	return uid, gid
}

// owner is who owns what the server creates.
func (m *idMap) owner() (uint32, uint32) {
	if m.pass {
		return m.clientUID, m.clientGID
	}
	return m.driveUID, m.driveGID
}

const fattrSize = 84

func nfsType(mode uint32) uint32 {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return 2
	case unix.S_IFBLK:
		return 3
	case unix.S_IFCHR:
		return 4
	case unix.S_IFLNK:
		return 5
	case unix.S_IFSOCK:
		return 6
	case unix.S_IFIFO:
		return 7
	}
	return 1
}

// putFattr appends an fattr3 for st: fileid is the inode, times and
// special mode bits are the real ones, ids are mapped for the client.
func (s *Server) putFattr(w *xdr.Writer, st *unix.Stat_t) {
	w.Uint32(nfsType(st.Mode))
	w.Uint32(st.Mode & 0o7777)
	w.Uint32(uint32(st.Nlink))
	uid, gid := s.ids.out(st.Uid, st.Gid)
	w.Uint32(uid)
	w.Uint32(gid)
	w.Uint64(uint64(st.Size))
	w.Uint64(uint64(st.Blocks) * 512)
	w.Uint32(unix.Major(uint64(st.Rdev)))
	w.Uint32(unix.Minor(uint64(st.Rdev)))
	w.Uint64(s.fsid)
	w.Uint64(s.table.FileID(st))
	putTime(w, st.Atim)
	putTime(w, st.Mtim)
	putTime(w, st.Ctim)
}

func putTime(w *xdr.Writer, t unix.Timespec) {
	w.Uint32(uint32(t.Sec))
	w.Uint32(uint32(t.Nsec))
}

func (s *Server) postOpAttr(w *xdr.Writer, st *unix.Stat_t) {
	if st == nil {
		w.Bool(false)
		return
	}
	w.Bool(true)
	s.putFattr(w, st)
}

// wcc appends wcc_data: pre-op (size, mtime, ctime) and post-op attributes.
func (s *Server) wcc(w *xdr.Writer, pre, post *unix.Stat_t) {
	if pre == nil {
		w.Bool(false)
	} else {
		w.Bool(true)
		w.Uint64(uint64(pre.Size))
		putTime(w, pre.Mtim)
		putTime(w, pre.Ctim)
	}
	s.postOpAttr(w, post)
}

// chmodFd sets the permission bits (07777) of the inode behind an O_PATH fd
// (fchmod refuses O_PATH fds, the /proc path does not); a symlink's mode
// cannot change on Linux, so it is left alone.
func chmodFd(fd int, mode uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode&0o7777, 0)
}
