package selftest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// FS is the file operations the self-test does, through the host mount or an NFS client.
type FS interface {
	WriteFile(name string, data []byte) error // durable when it returns (fsync / NFS COMMIT)
	ReadFile(name string) ([]byte, error)
	Rename(from, to string) error
	Remove(name string) error
	Exists(name string) (bool, error)
	Close() error
}

// DirFS is a mounted directory.
type DirFS string

func (d DirFS) path(n string) string { return filepath.Join(string(d), n) }

func (d DirFS) WriteFile(name string, data []byte) error {
	f, err := os.OpenFile(d.path(name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
func (d DirFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(d.path(name)) }
func (d DirFS) Rename(from, to string) error         { return os.Rename(d.path(from), d.path(to)) }
func (d DirFS) Remove(name string) error             { return os.Remove(d.path(name)) }
func (d DirFS) Close() error                         { return nil }
func (d DirFS) Exists(name string) (bool, error) {
	// Through the directory listing, as Finder sees it (a lookup could hit a cached entry).
	es, err := os.ReadDir(string(d))
	for _, e := range es {
		if e.Name() == name {
			return true, nil
		}
	}
	return false, err
}

// nfsFS reaches the export with go-nfs-client, as the serve-only client check.
type nfsFS struct {
	mnt *rpc.Client
	t   *nfs.Target
	exp string
	au  rpc.Auth
}

// DialNFS mounts export at addr (MOUNT and NFS share one port, no portmapper) as AUTH_SYS root.
func DialNFS(addr, export string) (FS, error) {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("bad NFS port in %q", addr)
	}
	if export == "" {
		export = "/"
	}
	auth := rpc.NewAuthUnix("luksmount-selftest", uint32(os.Getuid()), uint32(os.Getgid())).Auth()
	mc, err := nfs.DialServiceAtPort(host, port)
	if err != nil {
		return nil, fmt.Errorf("connect to MOUNT at %s: %w", addr, err)
	}
	fh, err := mountCall(mc, export, auth)
	if err != nil {
		mc.Close()
		return nil, err
	}
	nc, err := nfs.DialServiceAtPort(host, port)
	if err != nil {
		mc.Close()
		return nil, fmt.Errorf("connect to NFS at %s: %w", addr, err)
	}
	t, err := nfs.NewTargetWithClient(nc, auth, fh, export, 0)
	if err != nil {
		mc.Close()
		nc.Close()
		return nil, fmt.Errorf("NFS FSINFO on %s: %w", addr, err)
	}
	return &nfsFS{mnt: mc, t: t, exp: export, au: auth}, nil
}

// mountCall is MOUNT3 MNT (RFC 1813 5.2.1): the library's Mount dials NFS through a portmapper,
// which luksmount's export does not have.
func mountCall(c *rpc.Client, export string, auth rpc.Auth) ([]byte, error) {
	type mnt struct {
		rpc.Header
		Dirpath string
	}
	res, err := c.Call(&mnt{rpc.Header{Rpcvers: 2, Prog: nfs.MountProg, Vers: nfs.MountVers, Proc: nfs.MountProc3MNT, Cred: auth, Verf: rpc.AuthNull}, export})
	if err != nil {
		return nil, fmt.Errorf("MOUNT %s: %w", export, err)
	}
	st, err := xdr.ReadUint32(res)
	if err != nil {
		return nil, err
	}
	if st != nfs.MNT3Ok {
		return nil, fmt.Errorf("MOUNT %s: status %d", export, st)
	}
	return xdr.ReadOpaque(res)
}

func (f *nfsFS) WriteFile(name string, data []byte) error {
	w, err := f.t.OpenFile(name, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		w.Close()
		return err
	}
	return w.Close() // the library COMMITs unstable writes on close
}

func (f *nfsFS) ReadFile(name string) ([]byte, error) {
	r, err := f.t.Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (f *nfsFS) Rename(from, to string) error { return f.t.Rename(from, to) }
func (f *nfsFS) Remove(name string) error     { return f.t.Remove(name) }

// Exists uses LOOKUP: one call, where go-nfs-client's ReadDirPlus lists the whole directory.
func (f *nfsFS) Exists(name string) (bool, error) {
	_, _, err := f.t.Lookup(name, false)
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, err
}

func (f *nfsFS) Close() error {
	f.t.Close()
	f.mnt.Close()
	return nil
}
