//go:build linux

package nfsserver

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// Two overlapping WRITEs to one file land in the order they arrived even
// when the first is slow; READs of that file and calls on other files are
// not held up.
func TestWritesKeepArrivalOrder(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), "....")
	mustWrite(t, filepath.Join(root, "g"), "....")
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	stalled := false
	stuck := make(chan struct{}) // closed once the first WRITE is held in the hook
	var mu sync.Mutex
	testHookDispatch = func(c *rpcfront.Call) {
		mu.Lock()
		first := c.Prog == progNFS && c.Proc == procWrite && !stalled
		if first {
			stalled = true
		}
		mu.Unlock()
		if first {
			close(stuck)
			<-release // the first WRITE is stuck on a slow disk
		}
	}
	defer func() { testHookDispatch = nil }()
	addr := start(t, ours, root)
	defer unblock()
	c := dial(t, addr)
	rootH := c.mount()
	_, fh, _ := c.lookup(rootH, "f")
	_, gh, _ := c.lookup(rootH, "g")
	wr := func(h []byte, data string) uint32 {
		return c.send(progNFS, 3, 7, args(func(w *xdr.Writer) {
			w.Opaque(h)
			w.Uint64(0)
			w.Uint32(uint32(len(data)))
			w.Uint32(unstable)
			w.Opaque([]byte(data))
		}))
	}
	first := wr(fh, "AAAA")
	select {
	case <-stuck:
	case <-time.After(5 * time.Second):
		t.Fatal("the first WRITE never reached the server")
	}
	second := wr(fh, "BBBB")
	readXID := c.send(progNFS, 3, 6, args(func(w *xdr.Writer) { w.Opaque(fh); w.Uint64(0); w.Uint32(4) }))
	otherXID := wr(gh, "CCCC")
	got := map[uint32]bool{}
	for len(got) < 2 {
		rep, err := c.recv(2 * time.Second)
		if err != nil {
			t.Fatalf("READ of f and WRITE to g were held up behind the stuck WRITE: %v", err)
		}
		if rep.xid == second {
			t.Fatalf("the second WRITE to f ran before the first")
		}
		got[rep.xid] = true
	}
	if !got[readXID] || !got[otherXID] {
		t.Fatalf("unexpected replies %v", got)
	}
	unblock()
	for _, want := range []uint32{first, second} {
		rep, err := c.recv(5 * time.Second)
		if err != nil || rep.xid != want {
			t.Fatalf("reply %v (%v), want xid %d", rep, err, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "BBBB" {
		t.Fatalf("f holds %q, want the later write BBBB", b)
	}
}
