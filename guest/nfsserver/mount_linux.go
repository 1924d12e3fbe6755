package nfsserver

import (
	"path"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// exportPath is the one export: the whole served tree.
const exportPath = "/"

// MOUNT v3 procedures (RFC 1813 appendix I); go-nfs lacks DUMP, UMNTALL and
// EXPORT and cannot tell us about UMNT, so we answer them all.
var ownMount = map[uint32]procFunc{
	0: func(*Server, *rpcfront.Call, *xdr.Reader, *xdr.Writer) {},
	1: (*Server).mnt,
	2: (*Server).dump,
	3: (*Server).umnt,
	4: (*Server).umntall,
	5: (*Server).export,
}

func (s *Server) mnt(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dir := r.String(1024)
	if r.Err() != nil {
		return
	}
	if path.Clean("/"+dir) != exportPath && path.Clean(dir) != path.Clean(s.opts.Root) {
		w.Uint32(2) // MNT3ERR_NOENT
		return
	}
	s.mountsMu.Lock()
	s.mounts[c.Remote] = dir
	s.mountsMu.Unlock()
	s.opts.logf("nfs: %s mounted %s", c.Remote, dir)
	w.Uint32(0)
	w.Opaque(s.table.Root())
	w.Uint32(1) // one flavor:
	w.Uint32(rpcfront.AuthSys)
}

func (s *Server) dump(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	s.mountsMu.Lock()
	defer s.mountsMu.Unlock()
	for host, dir := range s.mounts {
		w.Bool(true)
		w.String(host)
		w.String(dir)
	}
	w.Bool(false)
}

func (s *Server) umnt(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dir := r.String(1024)
	if r.Err() != nil {
		return
	}
	s.mountsMu.Lock()
	delete(s.mounts, c.Remote)
	s.mountsMu.Unlock()
	s.opts.logf("nfs: %s unmounted %s", c.Remote, dir)
	if s.opts.OnUnmount != nil {
		s.opts.OnUnmount(c.Remote)
	}
}

func (s *Server) umntall(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	s.umnt(c, xdr.NewReader([]byte{0, 0, 0, 0}), w)
}

func (s *Server) export(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	w.Bool(true)
	w.String(exportPath)
	w.Bool(false) // no group list: the listener itself is the access boundary
	w.Bool(false)
}
