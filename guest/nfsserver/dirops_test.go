//go:build linux

package nfsserver

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/luksmount/luksmount/guest/xdr"
)

// REMOVE, RMDIR and RENAME answer the status RFC 1813 names for each errno
// (go-nfs answered NFS3ERR_IO, which the kernel client turns into EIO),
// act on the name and never a symlink's target, and return the directories'
// post-op attributes.
func TestDirOpStatuses(t *testing.T) {
	root := t.TempDir()
	addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true})
	c := dial(t, addr)
	rootH := c.mount()
	p := func(n string) string { return filepath.Join(root, n) }
	mkdir := func(n string) {
		if err := os.MkdirAll(p(n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("full")
	mustWrite(t, p("full/f"), "x")
	mkdir("empty")
	mkdir("src")
	mustWrite(t, p("src/in"), "y")
	mkdir("busy")
	mustWrite(t, p("busy/f"), "z")
	mustWrite(t, p("file"), "f")
	mustWrite(t, p("target"), "t")
	mustWrite(t, p(`back\slash`), "b")
	if err := os.Symlink("target", p("link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("src", p("dirlink")); err != nil {
		t.Fatal(err)
	}
	mkdir("sub")
	_, subH, _ := c.lookup(rootH, "sub")

	remove := func(proc uint32, name string) (uint32, *fattr) {
		st, r := c.nfsCall(proc, args(dirop(rootH, name)))
		if r.Bool() {
			r.Fixed(24)
		}
		return st, readPostOp(r)
	}
	rename := func(from, to string, toDir []byte) (uint32, *fattr, *fattr) {
		st, r := c.nfsCall(14, args(func(w *xdr.Writer) { dirop(rootH, from)(w); dirop(toDir, to)(w) }))
		if r.Bool() {
			r.Fixed(24)
		}
		a := readPostOp(r)
		if r.Bool() {
			r.Fixed(24)
		}
		return st, a, readPostOp(r)
	}

	if st, _ := remove(13, "full"); st != nfsErrNotEmpty {
		t.Errorf("RMDIR of a non-empty directory: status %d, want NOTEMPTY(66)", st)
	}
	if st, _ := remove(13, "file"); st != nfsErrNotDir {
		t.Errorf("RMDIR of a file: status %d, want NOTDIR(20)", st)
	}
	if st, _ := remove(13, "missing"); st != nfsErrNoEnt {
		t.Errorf("RMDIR of a missing name: status %d, want NOENT(2)", st)
	}
	if st, _ := remove(12, "empty"); st != nfsErrIsDir {
		t.Errorf("REMOVE of a directory: status %d, want ISDIR(21)", st)
	}
	if st, _ := remove(12, strings.Repeat("a", 256)); st != nfsErrNameLong {
		t.Errorf("REMOVE of a 256-byte name: status %d, want NAMETOOLONG(63)", st)
	}
	if st, _, _ := rename("src", "empty", rootH); st != 0 {
		t.Errorf("RENAME of a directory over an empty directory: status %d, want OK", st)
	} else if !exists(p("empty/in")) || exists(p("src")) {
		t.Errorf("RENAME of a directory over an empty directory did not move it")
	}
	if st, _, _ := rename("empty", "busy", rootH); st != nfsErrNotEmpty && st != nfsErrExist {
		t.Errorf("RENAME over a non-empty directory: status %d, want NOTEMPTY(66) or EXIST(17)", st)
	}
	if st, _, _ := rename("file", "busy", rootH); st != nfsErrIsDir {
		t.Errorf("RENAME of a file over a directory: status %d, want ISDIR(21)", st)
	}
	if st, _, _ := rename("busy", "file", rootH); st != nfsErrNotDir {
		t.Errorf("RENAME of a directory over a file: status %d, want NOTDIR(20)", st)
	}
	if st, _, _ := rename("busy", "inside", mustLookup(t, c, rootH, "busy")); st != nfsErrInval {
		t.Errorf("RENAME of a directory into itself: status %d, want INVAL(22)", st)
	}
	if st, _, _ := rename("nothing", "x", rootH); st != nfsErrNoEnt {
		t.Errorf("RENAME of a missing name: status %d, want NOENT(2)", st)
	}
	// Symlinks: the link moves or goes, the target stays where it is.
	st, fromA, toA := rename("link", "moved", subH)
	if st != 0 || fromA == nil || toA == nil {
		t.Errorf("RENAME of a symlink into sub: status %d, post-op attrs %v %v", st, fromA != nil, toA != nil)
	}
	if fi, err := os.Lstat(p("sub/moved")); err != nil || fi.Mode()&os.ModeSymlink == 0 || !exists(p("target")) {
		t.Errorf("RENAME of a symlink moved its target (moved: %v, target exists: %v)", err, exists(p("target")))
	}
	if st, post := remove(12, "dirlink"); st != 0 || post == nil {
		t.Errorf("REMOVE of a symlink to a directory: status %d, post-op dir attrs %v", st, post != nil)
	}
	if exists(p("dirlink")) || !exists(p("empty/in")) {
		t.Errorf("REMOVE of a symlink did not remove the link alone")
	}
	if st, post := remove(13, "full/f"); st != nfsErrInval || post == nil {
		t.Errorf("RMDIR of a multi-component name: status %d, want INVAL(22) with dir attrs", st)
	}
	if st, post := remove(12, "file"); st != 0 || post == nil || post.nlink == 0 {
		t.Errorf("REMOVE of a file: status %d, post-op dir attrs %v", st, post != nil)
	}
	if exists(p("file")) {
		t.Errorf("REMOVE left the file")
	}
	// go-nfs's path joining lost names with a backslash (ENOENT).
	if st, _ := remove(12, `back\slash`); st != 0 || exists(p(`back\slash`)) {
		t.Errorf("REMOVE of a name with a backslash: status %d", st)
	}
}

// LOOKUP finds names without following a final symlink, maps "." and "..",
// and never climbs above the export root.
func TestLookup(t *testing.T) {
	root := t.TempDir()
	addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true})
	c := dial(t, addr)
	rootH := c.mount()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.Symlink("/etc", filepath.Join(root, "d", "out"))
	dH := mustLookup(t, c, rootH, "d")
	st, _, a := c.lookup(dH, "out")
	if st != 0 || a == nil || a.typ != 5 {
		t.Errorf("LOOKUP of a symlink: status %d attrs %+v, want the link itself (type 5)", st, a)
	}
	if st, h, _ := c.lookup(dH, ".."); st != 0 || string(h) != string(rootH) {
		t.Errorf("LOOKUP .. of a top-level dir: status %d, not the root handle", st)
	}
	if st, h, _ := c.lookup(rootH, ".."); st != 0 || string(h) != string(rootH) {
		t.Errorf("LOOKUP .. of the root: status %d, left the root", st)
	}
	if st, h, _ := c.lookup(dH, "."); st != 0 || string(h) != string(dH) {
		t.Errorf("LOOKUP . : status %d, not the same handle", st)
	}
	if st, _, _ := c.lookup(rootH, "missing"); st != nfsErrNoEnt {
		t.Errorf("LOOKUP of a missing name: status %d, want NOENT(2)", st)
	}
	if st, _, _ := c.lookup(rootH, "d/out"); st != nfsErrInval && st != nfsErrNoEnt {
		t.Errorf("LOOKUP of a path: status %d, want it refused", st)
	}
}

func mustLookup(t *testing.T, c *rpcClient, dir []byte, name string) []byte {
	t.Helper()
	st, h, _ := c.lookup(dir, name)
	if st != 0 {
		t.Fatalf("LOOKUP %s: status %d", name, st)
	}
	return h
}

// CREATE skips chmod and truncate on a file it just made when they would
// change nothing (the many-files hot path), and still applies them when
// they would: an odd mode, setuid, and UNCHECKED truncation of an existing file.
func TestCreateAttributes(t *testing.T) {
	root := t.TempDir()
	os.Chown(root, 1000, 1000)
	addr, _ := startOurs(t, Options{Root: root, ClientUID: 501, ClientGID: 20, OwnerFromRoot: true})
	c := dial(t, addr)
	rootH := c.mount()
	create := func(name string, mode uint32, size *uint64) (uint32, *fattr) {
		st, r := c.nfsCall(8, args(func(w *xdr.Writer) {
			dirop(rootH, name)(w)
			w.Uint32(0) // UNCHECKED
			w.Bool(true)
			w.Uint32(mode)
			w.Bool(false)
			w.Bool(false)
			w.Bool(size != nil)
			if size != nil {
				w.Uint64(*size)
			}
			w.Uint32(0)
			w.Uint32(0)
		}))
		if st != 0 {
			return st, nil
		}
		if r.Bool() {
			r.Opaque(64)
		}
		return st, readPostOp(r)
	}
	zero := uint64(0)
	for _, m := range []uint32{0o644, 0o600, 0o777, 0o4755, 0o2711} {
		name := "m" + itoa(m)
		st, a := create(name, m, &zero)
		fi, err := os.Stat(filepath.Join(root, name))
		if st != 0 || a == nil || err != nil {
			t.Fatalf("CREATE %s: status %d, %v", name, st, err)
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if sys.Mode&0o7777 != m || a.mode != m || sys.Uid != 1000 || a.uid != 501 || a.size != 0 {
			t.Errorf("CREATE mode %o: on disk %o uid %d, reply mode %o uid %d size %d", m, sys.Mode&0o7777, sys.Uid, a.mode, a.uid, a.size)
		}
	}
	mustWrite(t, filepath.Join(root, "old"), "old contents")
	if st, a := create("old", 0o644, &zero); st != 0 || a == nil || a.size != 0 {
		t.Errorf("UNCHECKED CREATE of an existing file with size 0: status %d attrs %+v, want it truncated", st, a)
	}
	if fi, _ := os.Stat(filepath.Join(root, "old")); fi == nil || fi.Size() != 0 {
		t.Errorf("UNCHECKED CREATE with size 0 left the old contents")
	}
}

// ACCESS grants what is asked with the object's attributes, minus the
// write bits on a read-only export.
func TestAccess(t *testing.T) {
	for _, ro := range []bool{false, true} {
		root := t.TempDir()
		addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true, ReadOnly: ro})
		c := dial(t, addr)
		rootH := c.mount()
		st, r := c.nfsCall(4, args(func(w *xdr.Writer) { w.Opaque(rootH); w.Uint32(0x3f) }))
		a := readPostOp(r)
		got := r.Uint32()
		want := uint32(0x3f)
		if ro {
			want = 0x01 | 0x02 | 0x20
		}
		if st != 0 || a == nil || a.typ != 2 || got != want {
			t.Errorf("ACCESS (read-only %v): status %d attrs %v mask %#x, want %#x", ro, st, a != nil, got, want)
		}
		if st, _ := c.nfsCall(4, args(func(w *xdr.Writer) { w.Opaque([]byte("LMxx0000000000000000")); w.Uint32(1) })); st != nfsErrStale {
			t.Errorf("ACCESS of a bogus handle: status %d, want STALE(70)", st)
		}
	}
}
