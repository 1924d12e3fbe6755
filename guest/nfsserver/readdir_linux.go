package nfsserver

import (
	"unsafe"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

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
			if e.name == ".." && isRoot {
				e.ino = dst.Ino // the export's parent is itself
			}
			entry, dsize := s.direntry(dfd, e, plus, dotDir{h, dst, isRoot})
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

// dotDir is the directory being listed, for the attributes and handles of "." and "..".
type dotDir struct {
	h    []byte
	st   *unix.Stat_t
	root bool
}

// direntry encodes one entry3 (entryplus3 with plus: attributes and handle too); dsize is what
// counts against dircount. "." carries the directory's own attributes and handle, and ".." its
// parent's (the export root's is the root itself), as knfsd does: go-nfs-client compares "."'s
// mtime with GETATTR's and lists the directory again, forever, while they differ.
func (s *Server) direntry(dfd int, e dirent, plus bool, dir dotDir) (entry *xdr.Writer, dsize int) {
	entry = &xdr.Writer{B: make([]byte, 0, 64+len(e.name))}
	entry.Bool(true)
	entry.Uint64(e.ino)
	entry.String(e.name)
	entry.Uint64(e.off)
	dsize = len(entry.B)
	if !plus {
		return entry, dsize
	}
	if e.name == "." || e.name == ".." && dir.root {
		s.postOpAttr(entry, dir.st)
		entry.Bool(true)
		entry.Opaque(dir.h)
		return entry, dsize
	}
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
	return entry, dsize
}
