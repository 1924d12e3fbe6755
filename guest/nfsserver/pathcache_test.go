//go:build linux

package nfsserver

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/luksmount/luksmount/guest/xdr"
)

// The O_PATH fds cached by handle must not outlive what they name: a file
// or directory removed (over NFS or behind the server's back) is STALE at
// once, REMOVE and RMDIR drop the cached fd (it would keep the inode on the
// orphan list), and the cache stays within its size.
func TestPathCacheStaysTruthful(t *testing.T) {
	root := mountExt4(t)
	os.MkdirAll(filepath.Join(root, "d/sub"), 0o755)
	mustWrite(t, filepath.Join(root, "d/local"), "x")
	mustWrite(t, filepath.Join(root, "d/remote"), "x")
	addr, s := startOurs(t, Options{Root: root, OwnerFromRoot: true})
	c := dial(t, addr)
	rootH := c.mount()
	dH := mustLookup(t, c, rootH, "d")
	localH := mustLookup(t, c, dH, "local")
	remoteH := mustLookup(t, c, dH, "remote")
	subH := mustLookup(t, c, dH, "sub")
	for _, h := range [][]byte{localH, remoteH, subH} {
		if st, _ := c.getattr(h); st != 0 {
			t.Fatalf("GETATTR: status %d", st)
		}
	}
	cached := func(h []byte) bool {
		s.paths.mu.Lock()
		defer s.paths.mu.Unlock()
		_, ok := s.paths.m[string(h)]
		return ok
	}
	if !cached(localH) || !cached(subH) {
		t.Fatal("GETATTR on a filesystem root export did not cache the O_PATH fd")
	}

	os.Remove(filepath.Join(root, "d/local"))
	if st, _ := c.getattr(localH); st != nfsErrStale {
		t.Errorf("GETATTR of a file removed behind the server: status %d, want STALE", st)
	}
	if cached(localH) {
		t.Error("the fd of a removed file is still cached")
	}

	if st, _ := c.nfsCall(procRemove, args(dirop(dH, "remote"))); st != 0 {
		t.Fatalf("REMOVE: %d", st)
	}
	if cached(remoteH) {
		t.Error("REMOVE left the file's fd cached")
	}
	if st, _ := c.getattr(remoteH); st != nfsErrStale {
		t.Errorf("GETATTR after REMOVE: status %d, want STALE", st)
	}
	if st, _ := c.nfsCall(procRmdir, args(dirop(dH, "sub"))); st != 0 {
		t.Fatalf("RMDIR: %d", st)
	}
	if st, _ := c.nfsCall(procLookup, args(dirop(subH, "x"))); st != nfsErrStale {
		t.Errorf("LOOKUP in a removed directory: status %d, want STALE", st)
	}
	if st, _ := c.nfsCall(procAccess, args(func(w *xdr.Writer) { w.Opaque(subH); w.Uint32(1) })); st != nfsErrStale {
		t.Errorf("ACCESS of a removed directory: status %d, want STALE", st)
	}

	// More handles than the cache holds: it evicts, and every answer stays right.
	for i := 0; i < s.paths.max+100; i++ {
		mustWrite(t, filepath.Join(root, "d", "f"+strconv.Itoa(i)), strconv.Itoa(i))
	}
	for i := 0; i < s.paths.max+100; i++ {
		h := mustLookup(t, c, dH, "f"+strconv.Itoa(i))
		if st, a := c.getattr(h); st != 0 || a.size != uint64(len(strconv.Itoa(i))) {
			t.Fatalf("GETATTR f%d: status %d", i, st)
		}
	}
	s.paths.mu.Lock()
	n := len(s.paths.m)
	s.paths.mu.Unlock()
	if n > s.paths.max {
		t.Errorf("%d fds cached, more than the cache's %d", n, s.paths.max)
	}
}
