package nfsserver

import (
	"encoding/binary"
	"unsafe"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// dirent is one getdents64 record; name aliases the buffer, and cname is
// name with its NUL, ready for the *at syscalls without a copy.
type dirent struct {
	ino   uint64
	off   uint64
	name  []byte
	cname []byte
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
		if n < len(nb) { // the kernel always terminates names; skip one that is not
			out = append(out, dirent{ino: ino, off: off, name: nb[:n], cname: nb[:n+1]})
		}
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
	isRoot := s.isRoot(h)
	w.Uint32(nfsOK)
	s.postOpAttr(w, dst)
	w.Uint64(0) // cookie verifier
	used := len(w.B) + 8
	dused := 0
	n := 0
	eof := false
	buf := rpcfront.GetBuffer(32 << 10)[:32<<10]
	defer rpcfront.PutBuffer(buf)
	var entsBuf [128]dirent
	ents := entsBuf[:0]
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
			if string(e.name) == ".." && isRoot {
				e.ino = dst.Ino // the export's parent is itself
			}
			at := len(w.B)
			dsize := s.appendEntry(w, dfd, e, plus, dotDir{h, dst, isRoot})
			size := len(w.B) - at
			if used+size > int(maxcount) || (plus && dused+dsize > int(dircount)) {
				w.B = w.B[:at]
				break pages
			}
			used += size
			dused += dsize
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

// dotDir is the directory being listed, for the attributes and handles of "." and "..".
type dotDir struct {
	h    []byte
	st   *unix.Stat_t
	root bool
}

// appendEntry appends one entry3 (entryplus3 with plus: attributes and handle too) to w, with
// no allocation; dsize is what counts against dircount. "." carries the directory's own
// attributes and handle, and ".." its parent's (the export root's is the root itself), as knfsd
// does: go-nfs-client compares "."'s mtime with GETATTR's and lists the directory again, forever,
// while they differ.
func (s *Server) appendEntry(w *xdr.Writer, dfd int, e dirent, plus bool, dir dotDir) (dsize int) {
	at := len(w.B)
	w.Bool(true)
	id := e.ino
	if s.table.UsesPaths() { // the conversion allocates: only where fileids come from the table
		id = s.table.FileIDAt(dfd, string(e.name), e.ino)
	}
	w.Uint64(id)
	w.Uint32(uint32(len(e.name)))
	w.Fixed(e.name)
	w.Uint64(e.off)
	dsize = len(w.B) - at
	if !plus {
		return dsize
	}
	if string(e.name) == "." || string(e.name) == ".." && dir.root {
		s.postOpAttr(w, dir.st)
		w.Bool(true)
		w.Opaque(dir.h)
		return dsize
	}
	var st unix.Stat_t
	if err := fstatatName(dfd, e.cname, &st); err == nil {
		s.postOpAttr(w, &st)
	} else {
		w.Bool(false)
	}
	w.Bool(true)
	lenAt := len(w.B)
	w.Uint32(0) // handle length, patched below
	if b, err := s.table.AppendAt(w.B, dfd, e.cname); err == nil {
		w.B = b
		binary.BigEndian.PutUint32(w.B[lenAt:], uint32(len(w.B)-lenAt-4))
	} else {
		w.B = w.B[:lenAt-4]
		w.Bool(false)
	}
	return dsize
}

// fstatatName is fstatat(dfd, name, AT_SYMLINK_NOFOLLOW) on a NUL-terminated
// name, without copying it.
func fstatatName(dfd int, cname []byte, st *unix.Stat_t) error {
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dfd), uintptr(unsafe.Pointer(&cname[0])),
		uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
