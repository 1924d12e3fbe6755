// Package nfsrpc is a small NFSv3 client for benchmarks: it keeps many calls in flight on ONE
// TCP connection (replies matched by XID), which is what the kernel client does and what a
// server that serializes each connection cannot take advantage of. It speaks only the
// procedures the benchmarks use, with AUTH_SYS root credentials.
package nfsrpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// Program numbers and procedures (RFC 1813).
const (
	progNFS   = 100003
	progMount = 100005

	procGetattr     = 1
	procLookup      = 3
	procRead        = 6
	procWrite       = 7
	procCreate      = 8
	procReaddirplus = 17
	procCommit      = 21
	procMnt         = 1

	Unstable = 0
	FileSync = 2

	maxReply = 16 << 20
)

// StatusError is a non-OK NFS status.
type StatusError struct {
	Proc   string
	Status uint32
}

func (e *StatusError) Error() string { return fmt.Sprintf("nfs %s: status %d", e.Proc, e.Status) }

// Client is one connection.
type Client struct {
	conn net.Conn
	wmu  sync.Mutex
	bw   *bufio.Writer
	xid  atomic.Uint32
	cred []byte

	mu      sync.Mutex
	pending map[uint32]chan []byte
	err     error
}

// Dial connects to addr (host:port serving both MOUNT and NFS).
func Dial(addr string) (*Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	c := &Client{conn: conn, bw: bufio.NewWriterSize(conn, 64<<10), pending: map[uint32]chan []byte{}}
	c.xid.Store(uint32(time.Now().UnixNano()))
	var body xdr.Writer
	body.Uint32(uint32(time.Now().Unix()))
	body.String("lmbench")
	body.Uint32(0) // uid
	body.Uint32(0) // gid
	body.Uint32(0) // no supplementary groups
	var cred xdr.Writer
	cred.Uint32(1) // AUTH_SYS
	cred.Opaque(body.B)
	cred.Uint32(0) // verifier AUTH_NONE
	cred.Uint32(0)
	c.cred = cred.B
	go c.readLoop()
	return c, nil
}

// SetDeadline bounds every call from now on: past t the connection fails.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) readLoop() {
	br := bufio.NewReaderSize(c.conn, 256<<10)
	for {
		rec, err := rpcfront.ReadRecord(br, maxReply)
		if err != nil {
			c.fail(err)
			return
		}
		if len(rec) < 4 {
			continue
		}
		xid := binary.BigEndian.Uint32(rec)
		c.mu.Lock()
		ch := c.pending[xid]
		delete(c.pending, xid)
		c.mu.Unlock()
		if ch != nil {
			ch <- rec
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = fmt.Errorf("connection lost: %w", err)
	}
	for x, ch := range c.pending {
		close(ch)
		delete(c.pending, x)
	}
}

// call sends one call and waits for its reply; it returns the procedure's result body.
func (c *Client) call(prog, vers, proc uint32, args []byte) (*xdr.Reader, error) {
	xid := c.xid.Add(1)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[xid] = ch
	c.mu.Unlock()

	var w xdr.Writer
	w.B = make([]byte, 4, 4+40+len(c.cred)+len(args))
	w.Uint32(xid)
	w.Uint32(0) // CALL
	w.Uint32(2) // RPC version
	w.Uint32(prog)
	w.Uint32(vers)
	w.Uint32(proc)
	w.B = append(w.B, c.cred...)
	w.B = append(w.B, args...)
	binary.BigEndian.PutUint32(w.B, 0x80000000|uint32(len(w.B)-4))
	c.wmu.Lock()
	_, err := c.bw.Write(w.B)
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return nil, err
	}
	rec, ok := <-ch
	if !ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.err
	}
	r := xdr.NewReader(rec)
	r.Uint32() // xid
	if r.Uint32() != 1 {
		return nil, errors.New("rpc: not a reply")
	}
	if st := r.Uint32(); st != 0 {
		return nil, fmt.Errorf("rpc: call denied (reply_stat %d, detail %d)", st, r.Uint32())
	}
	r.Uint32()    // verifier flavor
	r.Opaque(400) // verifier body
	if as := r.Uint32(); as != 0 || r.Err() != nil {
		return nil, fmt.Errorf("rpc: call not executed (accept_stat %d)", as)
	}
	return r, nil
}

func (c *Client) nfs(name string, proc uint32, args []byte) (*xdr.Reader, error) {
	r, err := c.call(progNFS, 3, proc, args)
	if err != nil {
		return nil, fmt.Errorf("nfs %s: %w", name, err)
	}
	if st := r.Uint32(); st != 0 {
		return nil, &StatusError{Proc: name, Status: st}
	}
	return r, nil
}

// Mount returns the root handle of export.
func (c *Client) Mount(export string) ([]byte, error) {
	var a xdr.Writer
	a.String(export)
	r, err := c.call(progMount, 3, procMnt, a.B)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", export, err)
	}
	if st := r.Uint32(); st != 0 {
		return nil, fmt.Errorf("mount %s: status %d", export, st)
	}
	fh := r.Opaque(64)
	if r.Err() != nil {
		return nil, fmt.Errorf("mount %s: bad reply", export)
	}
	return append([]byte(nil), fh...), nil
}

// Attr is the part of fattr3 the benchmarks look at.
type Attr struct {
	Type   uint32
	Mode   uint32
	Size   uint64
	FileID uint64
}

func readFattr(r *xdr.Reader) Attr {
	var a Attr
	a.Type = r.Uint32()
	a.Mode = r.Uint32()
	r.Uint32() // nlink
	r.Uint32() // uid
	r.Uint32() // gid
	a.Size = r.Uint64()
	r.Uint64() // used
	r.Uint64() // rdev
	r.Uint64() // fsid
	a.FileID = r.Uint64()
	r.Fixed(24) // atime, mtime, ctime
	return a
}

func skipPostOpAttr(r *xdr.Reader) {
	if r.Bool() {
		readFattr(r)
	}
}

func skipWcc(r *xdr.Reader) {
	if r.Bool() {
		r.Fixed(24)
	}
	skipPostOpAttr(r)
}

// Getattr returns the attributes of fh.
func (c *Client) Getattr(fh []byte) (Attr, error) {
	var a xdr.Writer
	a.Opaque(fh)
	r, err := c.nfs("GETATTR", procGetattr, a.B)
	if err != nil {
		return Attr{}, err
	}
	at := readFattr(r)
	return at, r.Err()
}

// Lookup returns the handle of name in dir.
func (c *Client) Lookup(dir []byte, name string) ([]byte, error) {
	var a xdr.Writer
	a.Opaque(dir)
	a.String(name)
	r, err := c.nfs("LOOKUP", procLookup, a.B)
	if err != nil {
		return nil, err
	}
	fh := r.Opaque(64)
	if r.Err() != nil {
		return nil, errors.New("nfs LOOKUP: bad reply")
	}
	return append([]byte(nil), fh...), nil
}

// Create makes (or truncates) a regular file name in dir and returns its handle.
func (c *Client) Create(dir []byte, name string) ([]byte, error) {
	var a xdr.Writer
	a.Opaque(dir)
	a.String(name)
	a.Uint32(0) // UNCHECKED
	a.Bool(true)
	a.Uint32(0o644) // mode
	a.Bool(false)   // uid
	a.Bool(false)   // gid
	a.Bool(true)    // size
	a.Uint64(0)
	a.Uint32(0) // atime: don't change
	a.Uint32(0) // mtime: don't change
	r, err := c.nfs("CREATE", procCreate, a.B)
	if err != nil {
		return nil, err
	}
	if !r.Bool() {
		return c.Lookup(dir, name)
	}
	fh := r.Opaque(64)
	if r.Err() != nil {
		return nil, errors.New("nfs CREATE: bad reply")
	}
	return append([]byte(nil), fh...), nil
}

// Write writes data at off and returns the count the server took.
func (c *Client) Write(fh []byte, off uint64, data []byte, stable uint32) (uint32, error) {
	var a xdr.Writer
	a.B = make([]byte, 0, len(fh)+len(data)+32)
	a.Opaque(fh)
	a.Uint64(off)
	a.Uint32(uint32(len(data)))
	a.Uint32(stable)
	a.Opaque(data)
	r, err := c.nfs("WRITE", procWrite, a.B)
	if err != nil {
		return 0, err
	}
	skipWcc(r)
	n := r.Uint32()
	return n, r.Err()
}

// Commit asks the server to make everything written to fh durable.
func (c *Client) Commit(fh []byte) error {
	var a xdr.Writer
	a.Opaque(fh)
	a.Uint64(0)
	a.Uint32(0)
	_, err := c.nfs("COMMIT", procCommit, a.B)
	return err
}

// Read reads up to n bytes at off.
func (c *Client) Read(fh []byte, off uint64, n uint32) (data []byte, eof bool, err error) {
	var a xdr.Writer
	a.Opaque(fh)
	a.Uint64(off)
	a.Uint32(n)
	r, err := c.nfs("READ", procRead, a.B)
	if err != nil {
		return nil, false, err
	}
	skipPostOpAttr(r)
	r.Uint32() // count
	eof = r.Bool()
	data = r.Opaque(int(n))
	return data, eof, r.Err()
}

// ReaddirPlus lists dir completely (READDIRPLUS, maxcount bytes per reply) and returns the
// number of entries other than . and .., and the number of calls it took.
func (c *Client) ReaddirPlus(dir []byte, maxcount uint32) (entries, calls int, err error) {
	var cookie uint64
	var verf []byte = make([]byte, 8)
	for {
		var a xdr.Writer
		a.Opaque(dir)
		a.Uint64(cookie)
		a.Fixed(verf)
		a.Uint32(maxcount / 4) // dircount
		a.Uint32(maxcount)
		r, err := c.nfs("READDIRPLUS", procReaddirplus, a.B)
		if err != nil {
			return entries, calls, err
		}
		calls++
		skipPostOpAttr(r)
		verf = append([]byte(nil), r.Fixed(8)...)
		for r.Bool() {
			r.Uint64() // fileid
			name := r.String(4096)
			cookie = r.Uint64()
			skipPostOpAttr(r)
			if r.Bool() {
				r.Opaque(64)
			}
			if name != "." && name != ".." {
				entries++
			}
		}
		eof := r.Bool()
		if r.Err() != nil {
			return entries, calls, errors.New("nfs READDIRPLUS: bad reply")
		}
		if eof {
			return entries, calls, nil
		}
	}
}
