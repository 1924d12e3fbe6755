//go:build linux

package nfsserver

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// rpcClient is a minimal ONC RPC client for procedures and checks that
// libnfs cannot express.
type rpcClient struct {
	t   testing.TB
	c   net.Conn
	br  *bufio.Reader
	mu  sync.Mutex
	xid uint32
	uid uint32
	gid uint32
	wmu sync.Mutex
}

type rpcReply struct {
	xid    uint32
	denied bool
	stat   uint32 // accept_stat, or auth_stat when denied
	body   *xdr.Reader
}

func dial(t testing.TB, addr string) *rpcClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rpcClient{t: t, c: c, br: bufio.NewReader(c), xid: 100}
}

func encodeCall(xid, prog, vers, proc, uid, gid uint32, args []byte) []byte {
	w := &xdr.Writer{}
	w.Uint32(xid)
	w.Uint32(0)
	w.Uint32(2)
	w.Uint32(prog)
	w.Uint32(vers)
	w.Uint32(proc)
	cred := &xdr.Writer{}
	cred.Uint32(0)
	cred.String("mac")
	cred.Uint32(uid)
	cred.Uint32(gid)
	cred.Uint32(0)
	w.Uint32(1)
	w.Opaque(cred.B)
	w.Uint32(0)
	w.Uint32(0)
	w.B = append(w.B, args...)
	return w.B
}

// send writes a call and returns its xid.
func (c *rpcClient) send(prog, vers, proc uint32, args []byte) uint32 {
	c.mu.Lock()
	c.xid++
	xid := c.xid
	c.mu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.c.Write(rpcfront.AppendRecordMark(nil, encodeCall(xid, prog, vers, proc, c.uid, c.gid, args))); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	return xid
}

func (c *rpcClient) recv(timeout time.Duration) (*rpcReply, error) {
	c.c.SetReadDeadline(time.Now().Add(timeout))
	rec, err := rpcfront.ReadRecord(c.br, 64<<20)
	if err != nil {
		return nil, err
	}
	r := xdr.NewReader(rec)
	rep := &rpcReply{xid: r.Uint32()}
	r.Uint32()
	if r.Uint32() == 1 {
		rep.denied = true
		if r.Uint32() == 1 {
			rep.stat = r.Uint32()
		}
		return rep, nil
	}
	r.Uint32()
	r.Opaque(400)
	rep.stat = r.Uint32()
	rep.body = r
	return rep, nil
}

func (c *rpcClient) call(prog, vers, proc uint32, args []byte) *rpcReply {
	c.t.Helper()
	xid := c.send(prog, vers, proc, args)
	rep, err := c.recv(10 * time.Second)
	if err != nil {
		c.t.Fatalf("call %d.%d: %v", prog, proc, err)
	}
	if rep.xid != xid {
		c.t.Fatalf("reply xid %d, want %d", rep.xid, xid)
	}
	return rep
}

// nfsCall runs an NFSv3 procedure and returns its status and the rest of the body.
func (c *rpcClient) nfsCall(proc uint32, args []byte) (uint32, *xdr.Reader) {
	c.t.Helper()
	rep := c.call(100003, 3, proc, args)
	if rep.denied || rep.stat != 0 {
		c.t.Fatalf("nfs proc %d: rpc denied=%v stat=%d", proc, rep.denied, rep.stat)
	}
	return rep.body.Uint32(), rep.body
}

func args(f func(w *xdr.Writer)) []byte {
	w := &xdr.Writer{}
	f(w)
	return w.B
}

func (c *rpcClient) mount() []byte {
	c.t.Helper()
	rep := c.call(100005, 3, 1, args(func(w *xdr.Writer) { w.String("/") }))
	if rep.denied || rep.stat != 0 {
		c.t.Fatalf("mount: denied=%v stat=%d", rep.denied, rep.stat)
	}
	if st := rep.body.Uint32(); st != 0 {
		c.t.Fatalf("mount status %d", st)
	}
	return append([]byte(nil), rep.body.Opaque(64)...)
}

type fattr struct {
	typ, mode, nlink, uid, gid uint32
	size, used                 uint64
	fsid, fileid               uint64
	rdev, atime, mtime, ctime  [2]uint32
}

func readFattr(r *xdr.Reader) fattr {
	start := r.Offset()
	var a fattr
	a.typ, a.mode, a.nlink, a.uid, a.gid = r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32()
	a.size, a.used = r.Uint64(), r.Uint64()
	a.rdev = [2]uint32{r.Uint32(), r.Uint32()}
	a.fsid, a.fileid = r.Uint64(), r.Uint64()
	a.atime = [2]uint32{r.Uint32(), r.Uint32()}
	a.mtime = [2]uint32{r.Uint32(), r.Uint32()}
	a.ctime = [2]uint32{r.Uint32(), r.Uint32()}
	_ = start
	return a
}

func readPostOp(r *xdr.Reader) *fattr {
	if !r.Bool() {
		return nil
	}
	a := readFattr(r)
	return &a
}

func skipWcc(r *xdr.Reader) {
	if r.Bool() {
		r.Fixed(24)
	}
	readPostOp(r)
}

func (c *rpcClient) lookup(dir []byte, name string) (uint32, []byte, *fattr) {
	c.t.Helper()
	st, r := c.nfsCall(3, args(func(w *xdr.Writer) { w.Opaque(dir); w.String(name) }))
	if st != 0 {
		return st, nil, nil
	}
	h := append([]byte(nil), r.Opaque(64)...)
	return st, h, readPostOp(r)
}

func (c *rpcClient) getattr(h []byte) (uint32, *fattr) {
	c.t.Helper()
	st, r := c.nfsCall(1, args(func(w *xdr.Writer) { w.Opaque(h) }))
	if st != 0 {
		return st, nil
	}
	a := readFattr(r)
	return st, &a
}

func dirop(h []byte, name string) func(w *xdr.Writer) {
	return func(w *xdr.Writer) { w.Opaque(h); w.String(name) }
}

func emptySattr(w *xdr.Writer) {
	for i := 0; i < 6; i++ {
		w.Uint32(0)
	}
}

// server kinds under test
type kind int

const (
	stockChroot kind = iota // go-nfs + osfs.New (ChrootOS) + CachingHandler
	stockBound              // go-nfs + osfs BoundOS + CachingHandler
	ours
)

func (k kind) String() string { return [...]string{"stock-chroot", "stock-bound", "ours"}[k] }

// stockFS adds billy.Change to osfs the way go-nfs's example does (paths joined under the root, following symlinks).
type stockFS struct {
	billy.Filesystem
	root string
}

func (f stockFS) Chmod(name string, mode os.FileMode) error {
	return os.Chmod(filepath.Join(f.root, name), mode)
}
func (f stockFS) Lchown(name string, uid, gid int) error {
	return os.Lchown(filepath.Join(f.root, name), uid, gid)
}
func (f stockFS) Chown(name string, uid, gid int) error {
	return os.Chown(filepath.Join(f.root, name), uid, gid)
}
func (f stockFS) Chtimes(name string, a, m time.Time) error {
	return os.Chtimes(filepath.Join(f.root, name), a, m)
}

var nfsLogOnce sync.Once

// startStock serves root with stock go-nfs and returns its address.
func startStock(t testing.TB, root string, k kind) string {
	t.Helper()
	nfsLogOnce.Do(func() { nfs.Log.SetLevel(nfs.PanicLevel) })
	var fs billy.Filesystem
	if k == stockBound {
		fs = osfs.New(root, osfs.WithBoundOS())
	} else {
		fs = osfs.New(root)
	}
	h := nfshelper.NewCachingHandler(nfshelper.NewNullAuthHandler(stockFS{fs, root}), 1024)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go nfs.Serve(l, h)
	return l.Addr().String()
}

// startOurs serves root with this package.
func startOurs(t testing.TB, opts Options) (string, *Server) {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	opts.SyncDirs = opts.SyncDirs || forceSyncDirs
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
	})
	return l.Addr().String(), s
}

func start(t testing.TB, k kind, root string) string {
	if k == ours {
		a, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true})
		return a
	}
	return startStock(t, root, k)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func nfsURL(addr, p string) string {
	pt := port(addr)
	return fmt.Sprintf("nfs://127.0.0.1/%s?nfsport=%s&mountport=%s&version=3&auto-traverse-mounts=0", p, pt, pt)
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
