//go:build linux

package nfsserver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// mknodCall sends MKNOD; mode and the device numbers are used where the
// type carries them. It returns the status, and the handle and attributes
// on success.
func mknodCall(c *rpcClient, dir []byte, name string, typ, mode, uid, major, minor uint32) (uint32, []byte, *fattr) {
	st, r := c.nfsCall(11, args(func(w *xdr.Writer) {
		dirop(dir, name)(w)
		w.Uint32(typ)
		if _, ok := mknodKinds[typ]; !ok {
			return
		}
		w.Bool(true)
		w.Uint32(mode)
		w.Bool(true)
		w.Uint32(uid)
		w.Bool(true)
		w.Uint32(uid)
		w.Bool(false)
		w.Uint32(0) // atime: don't change
		w.Uint32(2) // mtime from the client
		w.Uint32(1_234_567_890)
		w.Uint32(0)
		if typ == nf3Blk || typ == nf3Chr {
			w.Uint32(major)
			w.Uint32(minor)
		}
	}))
	if st != 0 {
		skipWcc(r)
		return st, nil, nil
	}
	if !r.Bool() {
		return st, nil, readPostOp(r)
	}
	h := append([]byte(nil), r.Opaque(64)...)
	return st, h, readPostOp(r)
}

// MKNOD creates FIFOs, sockets and block and character devices with the
// mode, owner, times and device numbers asked for (issue 11 point 8:
// every MKNOD used to be refused); LOOKUP and GETATTR show the right type;
// REMOVE takes them away. Other types get BADTYPE and create nothing.
func TestMknod(t *testing.T) {
	root := t.TempDir()
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	for _, tc := range []struct {
		name         string
		typ, ifmt    uint32
		major, minor uint32
	}{
		{"fifo", nf3FIFO, unix.S_IFIFO, 0, 0},
		{"sock", nf3Sock, unix.S_IFSOCK, 0, 0},
		{"sda1", nf3Blk, unix.S_IFBLK, 8, 1},
		{"tty5", nf3Chr, unix.S_IFCHR, 4, 5},
		{"big", nf3Chr, unix.S_IFCHR, 4095, 1<<20 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, h, a := mknodCall(c, rootH, tc.name, tc.typ, 0o2640, 1234, tc.major, tc.minor)
			if st != 0 || h == nil || a == nil {
				t.Fatalf("MKNOD: status %d, handle %v, attrs %v", st, h != nil, a != nil)
			}
			want := fattr{typ: tc.typ, mode: 0o2640, uid: 1234, gid: 1234, rdev: [2]uint32{tc.major, tc.minor}}
			check := func(what string, a *fattr) {
				t.Helper()
				if a == nil || a.typ != want.typ || a.mode != want.mode || a.uid != want.uid || a.gid != want.gid ||
					a.rdev != want.rdev || a.mtime[0] != 1_234_567_890 {
					t.Fatalf("%s: attributes %+v, want type %d mode %o owner 1234:1234 rdev %v mtime 1234567890", what, a, want.typ, want.mode, want.rdev)
				}
			}
			check("MKNOD reply", a)
			lst, lh, la := c.lookup(rootH, tc.name)
			if lst != 0 || string(lh) != string(h) {
				t.Fatalf("LOOKUP: status %d, same handle %v", lst, string(lh) == string(h))
			}
			check("LOOKUP", la)
			_, ga := c.getattr(h)
			check("GETATTR", ga)
			var sb unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, tc.name), &sb); err != nil {
				t.Fatalf("nothing on disk: %v", err)
			}
			if sb.Mode&unix.S_IFMT != tc.ifmt || sb.Mode&0o7777 != 0o2640 || sb.Uid != 1234 ||
				unix.Major(sb.Rdev) != tc.major || unix.Minor(sb.Rdev) != tc.minor {
				t.Fatalf("on disk: mode %o uid %d rdev %d:%d", sb.Mode, sb.Uid, unix.Major(sb.Rdev), unix.Minor(sb.Rdev))
			}
			if st, _ := c.nfsCall(12, args(dirop(rootH, tc.name))); st != 0 || exists(filepath.Join(root, tc.name)) {
				t.Fatalf("REMOVE: status %d, still there %v", st, exists(filepath.Join(root, tc.name)))
			}
		})
	}
	if st, _, _ := mknodCall(c, rootH, "fifo2", nf3FIFO, 0o644, 0, 0, 0); st != 0 {
		t.Fatalf("MKNOD fifo2: status %d", st)
	}
	if st, _, _ := mknodCall(c, rootH, "fifo2", nf3FIFO, 0o644, 0, 0, 0); st != nfsErrExist {
		t.Errorf("MKNOD over an existing name: status %d, want EXIST", st)
	}
	for _, typ := range []uint32{nf3Reg, nf3Dir, nf3Lnk, 0, 8, 99} {
		if st, _, _ := mknodCall(c, rootH, "nope", typ, 0o644, 0, 0, 0); st != nfsErrBadType {
			t.Errorf("MKNOD of type %d: status %d, want BADTYPE (%d)", typ, st, nfsErrBadType)
		}
	}
	if exists(filepath.Join(root, "nope")) {
		t.Errorf("a refused MKNOD created something")
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Errorf("left in the root: %v", ents)
	}
}

// FSSTAT reports statfs's numbers; PATHCONF the filesystem's limits.
func TestFsstatPathconf(t *testing.T) {
	root := t.TempDir()
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	var sfs unix.Statfs_t
	unix.Statfs(root, &sfs)
	st, r := c.nfsCall(18, args(func(w *xdr.Writer) { w.Opaque(rootH) }))
	if st != 0 || readPostOp(r) == nil {
		t.Fatalf("FSSTAT: status %d", st)
	}
	bs := uint64(sfs.Bsize)
	tb, _, _ := r.Uint64(), r.Uint64(), r.Uint64()
	tf, _, _ := r.Uint64(), r.Uint64(), r.Uint64()
	if r.Uint32(); r.Err() != nil || tb != sfs.Blocks*bs || tf != sfs.Files {
		t.Fatalf("FSSTAT: tbytes %d tfiles %d (%v), want %d %d", tb, tf, r.Err(), sfs.Blocks*bs, sfs.Files)
	}
	st, r = c.nfsCall(20, args(func(w *xdr.Writer) { w.Opaque(rootH) }))
	if st != 0 || readPostOp(r) == nil {
		t.Fatalf("PATHCONF: status %d", st)
	}
	linkmax, namemax := r.Uint32(), r.Uint32()
	noTrunc, chownRestricted, caseInsensitive, casePreserving := r.Bool(), r.Bool(), r.Bool(), r.Bool()
	if r.Err() != nil || linkmax != linkMax(int64(sfs.Type)) || linkmax < 2 || namemax != uint32(sfs.Namelen) ||
		!noTrunc || !chownRestricted || caseInsensitive || !casePreserving {
		t.Fatalf("PATHCONF: linkmax %d name_max %d flags %v %v %v %v (%v)", linkmax, namemax, noTrunc, chownRestricted, caseInsensitive, casePreserving, r.Err())
	}
	bad := []byte("not a handle at all, not at all")
	for _, proc := range []uint32{18, 20} {
		if st, r := c.nfsCall(proc, args(func(w *xdr.Writer) { w.Opaque(bad) })); st == 0 || r.Bool() {
			t.Errorf("proc %d with a bad handle: status %d", proc, st)
		}
	}
}
