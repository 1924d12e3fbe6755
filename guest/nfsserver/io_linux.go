package nfsserver

import (
	"encoding/binary"
	"slices"

	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

func (s *Server) read(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	h := fh(r)
	off := r.Uint64()
	count := r.Uint32()
	if r.Err() != nil {
		return
	}
	count = min(count, maxIO)
	base := len(w.B)
	of, st, err := s.openRegular(h)
	if of == nil {
		if st == nil {
			st, _ = s.statHandle(h)
		}
		w.Uint32(status(err))
		s.postOpAttr(w, st)
		return
	}
	defer s.fds.put(of)
	// Header first, data straight into the reply buffer.
	w.Uint32(nfsOK)
	s.postOpAttr(w, st)
	w.Uint32(0) // count, patched below
	countAt := len(w.B) - 4
	w.Uint32(0) // eof, patched below
	w.Uint32(0) // data length, patched below
	start := len(w.B)
	// run sized the buffer for count: no allocation, no zeroing, no copy.
	w.B = slices.Grow(w.B, int(count)+3)[:start+int(count)+3]
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
	of, pre, err := s.openRegular(h)
	if of != nil && of.noWrite != nil {
		// Held read-only: the file may have become writable since it was opened, so open it
		// again; if it still cannot be written, say why (ROFS after ext4's remount-ro).
		s.fds.forget(of)
		s.fds.put(of)
		if of, pre, err = s.openRegular(h); of != nil && of.noWrite != nil {
			err = of.noWrite
			s.fds.put(of)
			of = nil
		}
	}
	if of == nil {
		w.Uint32(status(err))
		s.wcc(w, pre, pre)
		return
	}
	defer s.fds.put(of)
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

// openRegular is the step READ and WRITE share: the cached fd of a regular
// file's handle and its attributes. A file unlinked since (nlink 0, kept
// alive only by the cache) is STALE, a directory ISDIR, anything else not
// a regular file INVAL. On failure of is nil (st may still be set); on
// success the caller must s.fds.put(of).
func (s *Server) openRegular(h []byte) (of *openFile, st *unix.Stat_t, err error) {
	if of, err = s.fds.get(h); err != nil {
		return nil, nil, err
	}
	st, err = fstat(of.fd)
	switch {
	case err != nil:
	case st.Nlink == 0:
		s.fds.forget(of)
		err = nfshandle.ErrStale
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		err = unix.EISDIR
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = unix.EINVAL
	}
	if err != nil {
		s.fds.put(of)
		return nil, st, err
	}
	return of, st, nil
}
