package nfsserver

import (
	"path"
	"strings"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// exportPath is the one export: the whole served tree.
const exportPath = "/"

// mountProcTable answers the MOUNT procedures, all six (UMNT tells the
// agent the client is gone).
var mountProcTable = map[uint32]procFunc{
	mountNull:    func(*Server, *rpcfront.Call, *xdr.Reader, *xdr.Writer) {},
	mountMnt:     (*Server).mnt,
	mountDump:    (*Server).dump,
	mountUmnt:    (*Server).umnt,
	mountUmntall: (*Server).umntall,
	mountExport:  (*Server).export,
}

func (s *Server) mnt(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	dir := r.String(1024)
	if r.Err() != nil {
		return
	}
	h, ok := s.mountHandle(dir)
	if !ok {
		w.Uint32(mnt3ErrNoEnt)
		return
	}
	s.mountsMu.Lock()
	s.mounts[c.Remote] = dir
	s.mountsMu.Unlock()
	s.opts.logf("nfs: %s mounted %s", c.Remote, dir)
	w.Uint32(mnt3OK)
	w.Opaque(h)
	w.Uint32(1) // one flavor:
	w.Uint32(rpcfront.AuthSys)
}

// mountHandle resolves a MOUNT path: the export "/", the guest path of the root, or (as knfsd
// allows) any directory inside the export, e.g. `mount_nfs 127.0.0.1:/Photos`. Resolution goes
// through the contained filesystem and the path must name a real directory, not a symlink.
func (s *Server) mountHandle(dir string) ([]byte, bool) {
	clean := path.Clean("/" + dir) // "/../x" cleans to "/x": nothing climbs out
	if root := path.Clean(s.opts.Root); clean == root || strings.HasPrefix(clean, root+"/") {
		clean = "/" + strings.TrimPrefix(strings.TrimPrefix(clean, root), "/")
	}
	if clean == exportPath {
		return s.table.Root(), true
	}
	h, err := s.handleOfPath(strings.TrimPrefix(clean, "/"))
	if err != nil {
		return nil, false
	}
	return h, true
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
