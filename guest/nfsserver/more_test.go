//go:build linux

package nfsserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// A slow call does not stall the other calls of its connection.
func TestConcurrentCalls(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			mustWrite(t, filepath.Join(root, "f"), "data")
			unix.Mkfifo(filepath.Join(root, "fifo"), 0o644)
			release := make(chan struct{})
			defer close(release)
			if k == ours {
				testHookDispatch = func(c *rpcfront.Call) {
					if c.Prog == progNFS && c.Proc == 6 {
						<-release // a READ stuck on a slow disk
					}
				}
				defer func() { testHookDispatch = nil }()
			}
			c := dial(t, start(t, k, root))
			rootH := c.mount()
			name := "f"
			if k != ours {
				name = "fifo" // go-nfs opens the fifo for READ and blocks
			}
			_, h, _ := c.lookup(rootH, name)
			readXID := c.send(100003, 3, 6, args(func(w *xdr.Writer) { w.Opaque(h); w.Uint64(0); w.Uint32(4) }))
			getXID := c.send(100003, 3, 1, args(func(w *xdr.Writer) { w.Opaque(rootH) }))
			rep, err := c.recv(2 * time.Second)
			if k != ours {
				if err == nil {
					t.Fatalf("stock: expected the connection to stall, got reply %d", rep.xid)
				}
				unix.Open(filepath.Join(root, "fifo"), unix.O_WRONLY|unix.O_NONBLOCK, 0) // unblock
				t.Logf("stock: GETATTR stalled behind a blocked READ")
				return
			}
			if err != nil || rep.xid != getXID {
				t.Fatalf("ours: GETATTR did not overtake the stalled READ (%v)", err)
			}
			release <- struct{}{}
			if rep, err := c.recv(2 * time.Second); err != nil || rep.xid != readXID {
				t.Fatalf("READ reply: %v", err)
			}
		})
	}
}

// A panic fails one call; the connection and server carry on.
func TestPanicFailsOneCall(t *testing.T) {
	root := t.TempDir()
	testHookDispatch = func(c *rpcfront.Call) {
		if c.Prog == progNFS && c.Proc == 1 {
			panic("boom")
		}
	}
	defer func() { testHookDispatch = nil }()
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	rep := c.call(100003, 3, 1, args(func(w *xdr.Writer) { w.Opaque(rootH) }))
	if rep.stat != 5 {
		t.Fatalf("panicking call: accept_stat %d, want SYSTEM_ERR(5)", rep.stat)
	}
	if st, _, _ := c.lookup(rootH, "."); st != 0 {
		t.Fatalf("connection unusable after a panic: %d", st)
	}
}

// 100k entries list completely with a real client, and cookies
// survive changes to the directory.
func TestReaddirLarge(t *testing.T) {
	root := t.TempDir()
	const n = 100_000
	dfd, _ := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	for i := 0; i < n; i++ {
		fd, err := unix.Openat(dfd, fmt.Sprintf("file-%06d", i), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	unix.Close(dfd)
	addr := start(t, ours, root)
	out, err := exec.Command("timeout", "60", "nfs-ls", nfsURL(addr, "")).Output()
	if err != nil {
		t.Fatalf("nfs-ls: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		name := f[len(f)-1]
		if strings.HasPrefix(name, "file-") {
			if seen[name] {
				t.Fatalf("duplicate %s", name)
			}
			seen[name] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("nfs-ls listed %d of %d entries", len(seen), n)
	}
}

func readdirPage(c *rpcClient, h []byte, cookie uint64, verf []byte) (uint32, []string, uint64, []byte, bool) {
	st, r := c.nfsCall(16, args(func(w *xdr.Writer) {
		w.Opaque(h)
		w.Uint64(cookie)
		w.Fixed(verf)
		w.Uint32(4096)
	}))
	readPostOp(r)
	if st != 0 {
		return st, nil, 0, nil, false
	}
	v := append([]byte(nil), r.Fixed(8)...)
	var names []string
	for r.Bool() {
		r.Uint64()
		names = append(names, r.String(300))
		cookie = r.Uint64()
	}
	return st, names, cookie, v, r.Bool()
}

func TestReaddirCookiesSurviveChanges(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			for i := 0; i < 500; i++ {
				mustWrite(t, filepath.Join(root, fmt.Sprintf("f%03d", i)), "")
			}
			c := dial(t, start(t, k, root))
			rootH := c.mount()
			st, names, cookie, verf, eof := readdirPage(c, rootH, 0, make([]byte, 8))
			if st != 0 || eof {
				t.Fatalf("first page: %d eof %v", st, eof)
			}
			// The directory changes between pages.
			for i := 0; i < 50; i++ {
				mustWrite(t, filepath.Join(root, fmt.Sprintf("new%03d", i)), "")
			}
			seen := map[string]int{}
			for _, n := range names {
				seen[n]++
			}
			for !eof {
				st, names, cookie, verf, eof = readdirPage(c, rootH, cookie, verf)
				if st != 0 {
					if k != ours {
						t.Logf("stock: continuing after a change -> status %d", st)
						return
					}
					t.Fatalf("ours: page after change: status %d", st)
				}
				for _, n := range names {
					seen[n]++
				}
			}
			for i := 0; i < 500; i++ {
				if n := seen[fmt.Sprintf("f%03d", i)]; n != 1 {
					t.Fatalf("%s: f%03d seen %d times", k, i, n)
				}
			}
			if k != ours {
				t.Logf("stock: its per-verifier snapshot kept this listing consistent (no defect here)")
			}
		})
	}
}

// FuzzDispatch feeds arbitrary RPC records to the whole server: it must
// never panic out or hang. Seeds are calls our tests send, including
// MKNOD of every type, FSSTAT and PATHCONF.
func FuzzDispatch(f *testing.F) {
	root := f.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	os.Symlink("f", filepath.Join(root, "link"))
	s, err := New(Options{Root: root, Logf: func(string, ...any) {}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	rh := s.table.Root()
	fh, _ := s.handleOfPath("f")
	dh, _ := s.handleOfPath("dir")
	seed := func(prog, vers, proc uint32, a []byte) {
		f.Add(encodeCall(1, prog, vers, proc, 0, 0, a))
	}
	seed(100005, 3, 1, args(func(w *xdr.Writer) { w.String("/") }))
	seed(100005, 3, 5, nil)
	for proc := uint32(0); proc <= 22; proc++ {
		seed(100003, 3, proc, args(func(w *xdr.Writer) { w.Opaque(rh); w.String("f"); w.Uint64(0); w.Uint32(4096) }))
		seed(100003, 3, proc, args(func(w *xdr.Writer) { w.Opaque(fh); w.Uint64(0); w.Uint32(1); w.Uint32(0); w.Opaque([]byte("y")) }))
	}
	for k, a := range trickyArgs(rh, dh) {
		seed(100003, 3, k.proc, a)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.rpc.Handle(context.Background(), rec)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("call hung: % x", rec)
		}
	})
}
