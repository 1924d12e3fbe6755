package nfsserver

import (
	"encoding/binary"
	"sync"

	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// idMap translates owners between the drive and the client (point 7).
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
	w.Uint64(st.Ino)
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

// statCache remembers the latest stat of each inode go-nfs looked at, so
// the attributes in go-nfs replies can be rewritten to match ours exactly.
type statCache struct {
	mu        sync.Mutex
	cur, prev map[uint64]unix.Stat_t
}

const statCacheGen = 1 << 15

func (c *statCache) put(st *unix.Stat_t) {
	c.mu.Lock()
	if c.cur == nil || len(c.cur) >= statCacheGen {
		c.prev, c.cur = c.cur, make(map[uint64]unix.Stat_t, 256)
	}
	c.cur[st.Ino] = *st
	c.mu.Unlock()
}

func (c *statCache) get(ino uint64) (unix.Stat_t, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.cur[ino]; ok {
		return st, true
	}
	st, ok := c.prev[ino]
	return st, ok
}

// Shapes of the go-nfs replies whose attributes we rewrite.
const (
	shapeAttr    = iota // status, post_op_attr, rest
	shapeLookup         // status, ok: fh, attr, attr; else attr
	shapeCreated        // status, ok: post_op_fh, attr, wcc; else wcc
	shapeWcc            // status, wcc
	shapeWccWcc         // status, wcc, wcc
)

var passShapes = map[uint32]int{
	11: shapeCreated, 18: shapeAttr, 20: shapeAttr,
}

// patchReply rewrites every fattr3 in a go-nfs reply with our attributes for
// the same inode, and drops pre-op attributes (go-nfs fakes their ctime).
// On anything unexpected it returns the reply unchanged.
func (s *Server) patchReply(proc uint32, rep []byte) []byte {
	shape, ok := passShapes[proc]
	if !ok {
		return rep
	}
	r := xdr.NewReader(rep)
	r.Uint32() // xid
	if r.Uint32() != 1 || r.Uint32() != 0 {
		return rep
	}
	r.Uint32()
	r.Opaque(400)
	if r.Uint32() != 0 || r.Err() != nil {
		return rep
	}
	w := &xdr.Writer{B: make([]byte, 0, len(rep)+64)}
	w.B = append(w.B, rep[:r.Offset()]...)
	status := r.Uint32()
	w.Uint32(status)
	attr := func() {
		present := r.Bool()
		if !present {
			w.Bool(false)
			return
		}
		raw := r.Fixed(fattrSize)
		if raw == nil {
			return
		}
		if st, ok := s.stats.get(binary.BigEndian.Uint64(raw[52:60])); ok {
			w.Bool(true)
			s.putFattr(w, &st)
			return
		}
		w.Bool(true)
		w.B = append(w.B, raw...)
	}
	wcc := func() {
		if r.Bool() {
			r.Fixed(24)
		}
		w.Bool(false)
		attr()
	}
	switch shape {
	case shapeAttr:
		attr()
	case shapeLookup:
		if status == 0 {
			w.Opaque(r.Opaque(64))
			attr()
		}
		attr()
	case shapeCreated:
		if status == 0 {
			has := r.Bool()
			w.Bool(has)
			if has {
				w.Opaque(r.Opaque(64))
			}
			attr()
		}
		wcc()
	case shapeWcc:
		wcc()
	case shapeWccWcc:
		wcc()
		wcc()
	}
	if r.Err() != nil {
		if debugCalls {
			s.opts.logf("patch proc %d failed: %v %x", proc, r.Err(), rep)
		}
		return rep
	}
	return append(w.B, r.Remaining()...)
}
