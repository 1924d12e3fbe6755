//go:build linux

package nfsserver

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// tricky names calls whose arguments branch (MKNOD by type) or that once
// went to go-nfs, with well-formed arguments in a tree holding dir/, f and
// link -> f.
type tricky struct {
	proc uint32
	name string
}

func trickyArgs(rh, dh []byte) map[tricky][]byte {
	sattr := func(w *xdr.Writer) {
		w.Bool(true)
		w.Uint32(0o755)
		for i := 0; i < 5; i++ {
			w.Uint32(0)
		}
	}
	dev := func(w *xdr.Writer) { w.Uint32(8); w.Uint32(1) }
	return map[tricky][]byte{
		{3, "lookup"}:         args(dirop(rh, "f")),
		{4, "access"}:         args(func(w *xdr.Writer) { w.Opaque(rh); w.Uint32(0x3f) }),
		{5, "readlink"}:       args(func(w *xdr.Writer) { w.Opaque(rh) }),
		{9, "mkdir"}:          args(func(w *xdr.Writer) { dirop(rh, "newdir")(w); sattr(w) }),
		{10, "symlink"}:       args(func(w *xdr.Writer) { dirop(rh, "newlink")(w); sattr(w); w.String("f") }),
		{11, "mknod-fifo"}:    args(func(w *xdr.Writer) { dirop(rh, "fifo")(w); w.Uint32(nf3FIFO); sattr(w) }),
		{11, "mknod-sock"}:    args(func(w *xdr.Writer) { dirop(rh, "sock")(w); w.Uint32(nf3Sock); sattr(w) }),
		{11, "mknod-blk"}:     args(func(w *xdr.Writer) { dirop(rh, "blk")(w); w.Uint32(nf3Blk); sattr(w); dev(w) }),
		{11, "mknod-chr"}:     args(func(w *xdr.Writer) { dirop(rh, "chr")(w); w.Uint32(nf3Chr); sattr(w); dev(w) }),
		{11, "mknod-reg"}:     args(func(w *xdr.Writer) { dirop(rh, "reg")(w); w.Uint32(nf3Reg) }),
		{11, "mknod-nonsuch"}: args(func(w *xdr.Writer) { dirop(rh, "x")(w); w.Uint32(99) }),
		{12, "remove"}:        args(dirop(dh, "nothere")),
		{13, "rmdir"}:         args(dirop(dh, "nothere")),
		{14, "rename"}:        args(func(w *xdr.Writer) { dirop(dh, "nothere")(w); dirop(rh, "other")(w) }),
		{18, "fsstat"}:        args(func(w *xdr.Writer) { w.Opaque(rh) }),
		{20, "pathconf"}:      args(func(w *xdr.Writer) { w.Opaque(rh) }),
	}
}

// malformed derives broken argument lists from good ones: every truncation,
// every 4-byte word replaced by huge or off-by-one lengths, and trailing junk.
func malformed(good []byte) [][]byte {
	var out [][]byte
	for n := 0; n < len(good); n += 4 {
		out = append(out, good[:n])
	}
	for i := 0; i+4 <= len(good); i += 4 {
		for _, v := range []uint32{0xffffffff, 0x7fffffff, 0x80000000, 1 << 20, 65, 4097, 256, 3} {
			b := append([]byte(nil), good...)
			binary.BigEndian.PutUint32(b[i:], v)
			out = append(out, b)
		}
	}
	out = append(out, append(append([]byte(nil), good...), 0xde, 0xad, 0xbe, 0xef, 1))
	return out
}

// dispatchWithin runs one call through the whole server and fails the test
// if it takes longer than d.
func dispatchWithin(t *testing.T, s *Server, rec []byte, d time.Duration) []byte {
	t.Helper()
	done := make(chan []byte, 1)
	go func() { done <- s.rpc.Handle(t.Context(), rec) }()
	select {
	case rep := <-done:
		return rep
	case <-time.After(d):
		t.Fatalf("call hung for %v: % x", d, rec)
		return nil
	}
}

// Every malformed call gets an answer quickly, and the server still answers
// a good call afterwards.
func TestMalformedCalls(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), "x")
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	os.Symlink("f", filepath.Join(root, "link"))
	s, err := New(Options{Root: root, Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rh := s.table.Root()
	dh, _ := s.handleOfPath("dir")
	for k, good := range trickyArgs(rh, dh) {
		t.Run(k.name, func(t *testing.T) {
			for _, a := range malformed(good) {
				rep := dispatchWithin(t, s, encodeCall(9, progNFS, 3, k.proc, 0, 0, a), 5*time.Second)
				if rep == nil {
					t.Fatalf("no reply to % x", a)
				}
			}
			rep := dispatchWithin(t, s, encodeCall(10, progNFS, 3, 5, 0, 0, args(func(w *xdr.Writer) { w.Opaque(rh) })), 5*time.Second)
			r := xdr.NewReader(rep)
			r.Fixed(12)
			r.Uint32()
			r.Opaque(400)
			if st := r.Uint32(); st != rpcfront.Success {
				t.Fatalf("server unusable after malformed calls: accept_stat %d", st)
			}
		})
	}
}

// makeDir sends MKDIR with the given mode and returns status and attributes.
func makeDir(c *rpcClient, dir []byte, name string, mode uint32) (uint32, *fattr) {
	st, r := c.nfsCall(9, args(func(w *xdr.Writer) {
		dirop(dir, name)(w)
		w.Bool(true)
		w.Uint32(mode)
		for i := 0; i < 5; i++ {
			w.Uint32(0)
		}
	}))
	if st != 0 {
		return st, nil
	}
	if r.Bool() {
		r.Opaque(64)
	}
	return st, readPostOp(r)
}

// MKDIR keeps the setuid, setgid and sticky bits the client asks for, and
// the setgid bit a directory inherits; SYMLINK gets the drive owner and
// the client's times.
func TestMkdirSymlinkModes(t *testing.T) {
	root := t.TempDir()
	os.Chown(root, 1000, 1000)
	addr, _ := startOurs(t, Options{Root: root, ClientUID: 501, ClientGID: 20, OwnerFromRoot: true})
	c := dial(t, addr)
	c.uid, c.gid = 501, 20
	rootH := c.mount()
	for name, mode := range map[string]uint32{"sticky": 0o1777, "sgid": 0o2775, "all": 0o7755, "plain": 0o750} {
		st, a := makeDir(c, rootH, name, mode)
		if st != 0 || a == nil {
			t.Fatalf("MKDIR %s: status %d", name, st)
		}
		if a.mode != mode || a.typ != 2 {
			t.Errorf("MKDIR %s: reply says mode %o type %d, want %o dir", name, a.mode, a.typ, mode)
		}
		var sb unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, name), &sb); err != nil {
			t.Fatal(err)
		}
		if sb.Mode&0o7777 != mode || sb.Uid != 1000 || sb.Gid != 1000 {
			t.Errorf("MKDIR %s: on disk mode %o owner %d:%d, want %o 1000:1000", name, sb.Mode&0o7777, sb.Uid, sb.Gid, mode)
		}
	}
	_, sg, _ := c.lookup(rootH, "sgid")
	if st, a := makeDir(c, sg, "child", 0o755); st != 0 || a.mode != 0o2755 {
		t.Errorf("MKDIR in a setgid dir: status %d mode %o, want 02755 (inherited setgid)", st, a.mode)
	}
	if st, _ := makeDir(c, rootH, "sticky", 0o755); st != nfsErrExist {
		t.Errorf("MKDIR of an existing name: status %d, want EXIST", st)
	}
	for _, bad := range []string{"a/b", "", ".."} {
		if st, _ := makeDir(c, rootH, bad, 0o755); st == 0 {
			t.Errorf("MKDIR %q succeeded", bad)
		}
	}
	if exists(filepath.Join(root, "a")) {
		t.Errorf("MKDIR a/b created a")
	}

	st, r := c.nfsCall(10, args(func(w *xdr.Writer) {
		dirop(rootH, "ln")(w)
		w.Bool(true)
		w.Uint32(0o4755)
		w.Uint32(0)
		w.Uint32(0)
		w.Uint32(0)
		w.Uint32(0)          // atime: don't change
		w.Uint32(2)          // mtime: client time
		w.Uint32(1000000000) // 2001-09-09
		w.Uint32(0)
		w.String("sticky/../plain")
	}))
	if st != 0 {
		t.Fatalf("SYMLINK: status %d", st)
	}
	if !r.Bool() {
		t.Fatal("SYMLINK: no handle")
	}
	r.Opaque(64)
	if a := readPostOp(r); a == nil || a.typ != 5 || a.uid != 501 || a.mtime[0] != 1000000000 {
		t.Errorf("SYMLINK attributes %+v, want a symlink owned by 501 with mtime 1000000000", a)
	}
	var sb unix.Stat_t
	unix.Lstat(filepath.Join(root, "ln"), &sb)
	if tgt, _ := os.Readlink(filepath.Join(root, "ln")); tgt != "sticky/../plain" || sb.Uid != 1000 || sb.Mtim.Sec != 1000000000 {
		t.Errorf("symlink on disk: target %q uid %d mtime %d", tgt, sb.Uid, sb.Mtim.Sec)
	}
}

// Names are single directory entries: go-nfs would join "a/b" or ".." into
// a path (REMOVE of ".." in dir/sub would remove dir/sub's parent's entry).
func TestNamesAreSingleEntries(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "d", "sub"), 0o755)
	os.Mkdir(filepath.Join(root, "d", "empty"), 0o755)
	mustWrite(t, filepath.Join(root, "d", "f"), "keep")
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	_, dh, _ := c.lookup(rootH, "d")
	_, sub, _ := c.lookup(dh, "sub")
	for _, name := range []string{"..", ".", "sub/..", "../d/f", "f\x00x"} {
		if st, _ := c.nfsCall(13, args(dirop(sub, name))); st == 0 {
			t.Errorf("RMDIR %q succeeded", name)
		}
		if st, _ := c.nfsCall(12, args(dirop(dh, name))); st == 0 {
			t.Errorf("REMOVE %q succeeded", name)
		}
		if st, _ := c.nfsCall(14, args(func(w *xdr.Writer) { dirop(dh, name)(w); dirop(rootH, "moved")(w) })); st == 0 {
			t.Errorf("RENAME %q succeeded", name)
		}
	}
	for _, p := range []string{"d/sub", "d/empty", "d/f"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s is gone", p)
		}
	}
	if st, _, _ := c.lookup(rootH, "d/f"); st == 0 {
		t.Errorf("LOOKUP of d/f in the root succeeded")
	}
	if st, h, _ := c.lookup(sub, ".."); st != 0 || string(h) != string(dh) {
		t.Errorf("LOOKUP .. : status %d", st)
	}
	if st, _ := c.nfsCall(12, args(dirop(dh, "f"))); st != 0 || exists(filepath.Join(root, "d", "f")) {
		t.Errorf("plain REMOVE failed: %d", st)
	}
}
