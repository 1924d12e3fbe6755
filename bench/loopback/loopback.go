// Package loopback measures NFS servers on the host's loopback, no VM involved: stock go-nfs
// (osfs + CachingHandler, one call at a time per connection) against guest/nfsserver, with a
// client that keeps many 1 MiB requests in flight on one connection; and how handle
// resolution and directory listing scale with the number of files.
package loopback

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/luksmount/luksmount/bench/nfsrpc"
	"github.com/luksmount/luksmount/guest/nfsserver"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// Server is a running NFS server on 127.0.0.1.
type Server struct {
	Name  string
	Addr  string
	close func() error
}

// Close stops the server.
func (s *Server) Close() error { return s.close() }

// stockFS gives osfs the billy.Change methods go-nfs needs for SETATTR, as go-nfs's own example
// server does (paths joined under the root).
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

var quietOnce sync.Once

// StartStock serves root with go-nfs the way its example does: nfs.Serve over
// CachingHandler(NullAuthHandler(osfs)), keeping up to handles handles.
func StartStock(root string, handles int) (*Server, error) {
	quietOnce.Do(func() { nfs.Log.SetLevel(nfs.PanicLevel) })
	fs := osfs.New(root)
	h := nfshelper.NewCachingHandler(nfshelper.NewNullAuthHandler(stockFS{fs, root}), handles)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go nfs.Serve(l, h)
	return &Server{Name: "stock", Addr: l.Addr().String(), close: l.Close}, nil
}

// StartOurs serves root with guest/nfsserver as the agent does (root may use it).
func StartOurs(root string) (*Server, error) {
	s, err := nfsserver.New(nfsserver.Options{Root: root, OwnerFromRoot: true})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	return &Server{Name: "ours", Addr: l.Addr().String(), close: func() error {
		err := s.Close()
		if serr := <-done; serr != nil && err == nil {
			err = serr
		}
		return err
	}}, nil
}

// SeqResult is one sequential transfer.
type SeqResult struct {
	Server  string  `json:"server"`
	Op      string  `json:"op"` // write (UNSTABLE + COMMIT) or read
	Depth   int     `json:"depth"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"`
}

// Seq writes a size-byte file with req-byte UNSTABLE WRITEs, depth of them in flight on one
// connection, then COMMITs; then reads it back the same way and checks every byte.
func Seq(addr, name string, size int64, req, depth int) (w, r SeqResult, err error) {
	c, err := nfsrpc.Dial(addr)
	if err != nil {
		return w, r, err
	}
	defer c.Close()
	root, err := c.Mount("/")
	if err != nil {
		return w, r, err
	}
	fh, err := c.Create(root, name)
	if err != nil {
		return w, r, err
	}
	buf := bytes.Repeat([]byte("luksmount bench "), req/16+1)[:req]
	n := (size + int64(req) - 1) / int64(req)
	each := func(fn func(i int64) error) (time.Duration, error) {
		var next atomic.Int64
		var first error
		var mu sync.Mutex
		var wg sync.WaitGroup
		t := time.Now()
		for g := 0; g < depth; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= n {
						return
					}
					if err := fn(i); err != nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(t), first
	}
	chunk := func(i int64) []byte { return buf[:min(int64(req), size-i*int64(req))] }
	d, err := each(func(i int64) error {
		p := chunk(i)
		got, err := c.Write(fh, uint64(i)*uint64(req), p, nfsrpc.Unstable)
		if err == nil && int(got) != len(p) {
			err = fmt.Errorf("short write at request %d: %d of %d", i, got, len(p))
		}
		return err
	})
	if err != nil {
		return w, r, err
	}
	t := time.Now()
	if err := c.Commit(fh); err != nil {
		return w, r, err
	}
	d += time.Since(t)
	w = SeqResult{Op: "write", Depth: depth, Bytes: size, Seconds: d.Seconds(), MBps: float64(size) / 1e6 / d.Seconds()}
	d, err = each(func(i int64) error {
		want := chunk(i)
		got, _, err := c.Read(fh, uint64(i)*uint64(req), uint32(req))
		if err == nil && !bytes.Equal(got, want) {
			err = fmt.Errorf("read at request %d: %d bytes, content differs", i, len(got))
		}
		return err
	})
	if err != nil {
		return w, r, err
	}
	r = SeqResult{Op: "read", Depth: depth, Bytes: size, Seconds: d.Seconds(), MBps: float64(size) / 1e6 / d.Seconds()}
	return w, r, nil
}

// ParallelConfig sizes Parallel.
type ParallelConfig struct {
	Dir    string // a fresh directory on the host
	Size   int64  // file size
	Req    int    // request size
	Depths []int  // in-flight requests on the one connection
}

// Parallel runs Seq against stock and ours for each depth.
func Parallel(ctx context.Context, c ParallelConfig) ([]SeqResult, error) {
	var out []SeqResult
	for _, start := range []func(string) (*Server, error){
		func(root string) (*Server, error) { return StartStock(root, 1024) }, StartOurs,
	} {
		for _, depth := range c.Depths {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			root, err := os.MkdirTemp(c.Dir, "par-")
			if err != nil {
				return out, err
			}
			s, err := start(root)
			if err != nil {
				return out, err
			}
			w, r, err := Seq(s.Addr, "seq.bin", c.Size, c.Req, depth)
			s.Close()
			os.RemoveAll(root)
			if err != nil {
				return out, fmt.Errorf("%s depth %d: %w", s.Name, depth, err)
			}
			w.Server, r.Server = s.Name, s.Name
			out = append(out, w, r)
		}
	}
	return out, nil
}

// ScaleResult is GETATTR latency on one handle after Looked-up distinct files were looked up.
type ScaleResult struct {
	Server   string  `json:"server"`
	Asked    int     `json:"asked"`          // lookups asked for
	LookedUp int     `json:"looked_up"`      // done before the time limit (+1 for the measured handle)
	LookupS  float64 `json:"lookup_seconds"` // time to look them all up (depth 32)
	P50us    float64 `json:"getattr_p50_us"`
	P99us    float64 `json:"getattr_p99_us"`
	// Failed is the first LOOKUP error, when the run stopped on one (LookedUp says how far it got).
	Failed string `json:"failed,omitempty"`
}

// ListResult is a full READDIRPLUS listing.
type ListResult struct {
	Server  string  `json:"server"`
	Entries int     `json:"entries"`
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
}

// Populate makes dirs subdirectories d0.. of root with per empty files each (f0..), in parallel.
func Populate(root string, dirs, per int) error {
	var wg sync.WaitGroup
	errs := make(chan error, dirs)
	sem := make(chan struct{}, 4)
	for d := 0; d < dirs; d++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			dir := filepath.Join(root, fmt.Sprintf("d%d", d))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs <- err
				return
			}
			for i := 0; i < per; i++ {
				f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					errs <- err
					return
				}
				f.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Scale looks up n files of a tree made by Populate (across its d* directories, per files
// each), then times GETATTR on the first handle it got, one call at a time. The lookups stop at
// limit (0 = none): a server whose LOOKUP cost grows with the directory would otherwise never
// finish; LookedUp then says how far it got.
func Scale(s *Server, n, per int, samples int, limit time.Duration) (ScaleResult, error) {
	c, err := nfsrpc.Dial(s.Addr)
	if err != nil {
		return ScaleResult{}, err
	}
	defer c.Close()
	root, err := c.Mount("/")
	if err != nil {
		return ScaleResult{}, err
	}
	dirs := map[int][]byte{}
	for d := 0; d*per < n; d++ {
		if dirs[d], err = c.Lookup(root, fmt.Sprintf("d%d", d)); err != nil {
			return ScaleResult{}, err
		}
	}
	first, err := c.Lookup(dirs[0], "f0")
	if err != nil {
		return ScaleResult{}, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	t := time.Now()
	var deadline time.Time
	if limit > 0 {
		deadline = t.Add(limit)
	}
	var done atomic.Int64
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				if _, err := c.Lookup(dirs[i/per], fmt.Sprintf("f%d", i%per)); err != nil {
					errMu.Lock()
					firstErr = err
					errMu.Unlock()
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	res := ScaleResult{Server: s.Name, Asked: n, LookedUp: int(done.Load()) + 1, LookupS: time.Since(t).Seconds()}
	if firstErr != nil {
		// A server that fails a lookup of a file that exists is a result (stock go-nfs answers
		// NOENT at 200k handles), not a reason to drop the other server's rows.
		res.Failed = firstErr.Error()
		return res, nil
	}
	lat := make([]time.Duration, samples)
	for i := range lat {
		t := time.Now()
		a, err := c.Getattr(first)
		if err != nil {
			return res, fmt.Errorf("GETATTR after %d lookups: %w", n, err)
		}
		if a.Type != 1 {
			return res, fmt.Errorf("GETATTR after %d lookups: type %d, want a regular file", n, a.Type)
		}
		lat[i] = time.Since(t)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50us = float64(lat[len(lat)/2].Nanoseconds()) / 1e3
	res.P99us = float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
	return res, nil
}

// List lists directory dir (relative to the export root) with READDIRPLUS, within limit (0 = no limit).
func List(s *Server, dir string, want int, limit time.Duration) (ListResult, error) {
	c, err := nfsrpc.Dial(s.Addr)
	if err != nil {
		return ListResult{}, err
	}
	defer c.Close()
	root, err := c.Mount("/")
	if err != nil {
		return ListResult{}, err
	}
	fh, err := c.Lookup(root, dir)
	if err != nil {
		return ListResult{}, err
	}
	t := time.Now()
	if limit > 0 {
		c.SetDeadline(t.Add(limit))
	}
	n, calls, err := c.ReaddirPlus(fh, 64<<10)
	if err != nil && limit > 0 && time.Since(t) >= limit {
		return ListResult{}, fmt.Errorf("listing %s: not finished after %s (%d entries in %d calls)", dir, limit, n, calls)
	}
	if err != nil {
		return ListResult{}, err
	}
	if n != want {
		return ListResult{}, fmt.Errorf("listed %d entries of %s, want %d", n, dir, want)
	}
	return ListResult{Server: s.Name, Entries: n, Calls: calls, Seconds: time.Since(t).Seconds()}, nil
}
