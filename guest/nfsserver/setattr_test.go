//go:build linux

package nfsserver

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// sattrArgs encodes SETATTR3args for h: only the fields given are set.
func sattrArgs(h []byte, mode, uid *uint32, size *uint64, mtime *uint32) []byte {
	return args(func(w *xdr.Writer) {
		w.Opaque(h)
		opt32 := func(v *uint32) {
			w.Bool(v != nil)
			if v != nil {
				w.Uint32(*v)
			}
		}
		opt32(mode)
		opt32(uid)
		w.Bool(false) // gid
		w.Bool(size != nil)
		if size != nil {
			w.Uint64(*size)
		}
		w.Uint32(0) // atime: don't change
		if mtime != nil {
			w.Uint32(2)
			w.Uint32(*mtime)
			w.Uint32(0)
		} else {
			w.Uint32(0)
		}
		w.Bool(false) // no guard
	})
}

// A SETATTR that changes size, mode, owner or times is committed to disk
// before its reply (issue 11 point 2): the commit hook must have seen the
// inode by the time the client reads the reply. One that changes nothing
// needs no commit.
func TestSetattrCommitsBeforeReply(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), "some data to cut")
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.Symlink("f", filepath.Join(root, "ln"))
	var mu sync.Mutex
	committed := map[uint64]int{}
	testHookCommitted = func(ino uint64) { mu.Lock(); committed[ino]++; mu.Unlock() }
	defer func() { testHookCommitted = nil }()
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	u32 := func(v uint32) *uint32 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name, obj        string
		mode, uid, mtime *uint32
		size             *uint64
	}{
		{name: "truncate", obj: "f", size: u64(4)},
		{name: "chmod", obj: "f", mode: u32(0o600)},
		{name: "chown", obj: "f", uid: u32(0)},
		{name: "utimes", obj: "f", mtime: u32(1_500_000_000)},
		{name: "chmod dir", obj: "d", mode: u32(0o700)},
		{name: "utimes symlink", obj: "ln", mtime: u32(1_500_000_000)},
		{name: "nothing", obj: "f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, h, _ := c.lookup(rootH, tc.obj)
			var sb unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, tc.obj), &sb); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			before := committed[sb.Ino]
			mu.Unlock()
			st, _ := c.nfsCall(2, sattrArgs(h, tc.mode, tc.uid, tc.size, tc.mtime))
			mu.Lock()
			n := committed[sb.Ino] - before
			mu.Unlock()
			if st != 0 {
				t.Fatalf("SETATTR: status %d", st)
			}
			want := 1
			if tc.name == "nothing" {
				want = 0
			}
			if n != want {
				t.Fatalf("SETATTR %s: %d commits of the inode before the reply, want %d", tc.name, n, want)
			}
		})
	}
	if fi, _ := os.Stat(filepath.Join(root, "f")); fi.Size() != 4 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("f is %d bytes, mode %v; want 4 bytes, 0600", fi.Size(), fi.Mode())
	}
}
