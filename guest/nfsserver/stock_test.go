//go:build linux

package nfsserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

func mustWrite(t testing.TB, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// Nothing outside the tree can be reached, and operations on a
// symlink act on the link.
func TestContainment(t *testing.T) {
	for _, k := range []kind{stockChroot, stockBound, ours} {
		t.Run(k.String(), func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
			mustWrite(t, filepath.Join(outside, "secret"), "plaintext")
			mustWrite(t, filepath.Join(root, "target"), "keep me")
			os.Symlink("../outside", filepath.Join(root, "rel"))
			os.Symlink(outside, filepath.Join(root, "abs"))
			os.Symlink("target", filepath.Join(root, "link"))
			c := dial(t, start(t, k, root))
			rootH := c.mount()

			var escaped []string
			// REMOVE through an intermediate symlinked directory.
			for _, dir := range []string{"rel", "abs"} {
				if st, h, _ := c.lookup(rootH, dir); st == 0 {
					c.nfsCall(12, args(dirop(h, "secret")))
				}
				if !exists(filepath.Join(outside, "secret")) {
					escaped = append(escaped, "REMOVE via "+dir+" deleted a file outside the root")
					mustWrite(t, filepath.Join(outside, "secret"), "plaintext")
				}
			}
			// CREATE/MKDIR through a symlinked directory.
			if st, h, _ := c.lookup(rootH, "abs"); st == 0 {
				c.nfsCall(9, args(func(w *xdr.Writer) { dirop(h, "planted")(w); emptySattr(w) }))
				if exists(filepath.Join(outside, "planted")) {
					escaped = append(escaped, "MKDIR via abs created a directory outside the root")
				}
			}
			// REMOVE of a symlink must remove the link, not its target.
			c.nfsCall(12, args(dirop(rootH, "link")))
			if !exists(filepath.Join(root, "target")) {
				escaped = append(escaped, "REMOVE of a symlink deleted its target")
			}
			if k == ours {
				if len(escaped) > 0 {
					t.Fatalf("ours: %v", escaped)
				}
				if exists(filepath.Join(root, "link")) {
					t.Fatalf("ours: REMOVE of a symlink left the link")
				}
				return
			}
			if len(escaped) == 0 && k == stockBound {
				t.Fatalf("%s: expected the known escape, saw none", k)
			}
			t.Logf("%s defects reproduced: %v", k, escaped)
		})
	}
}

// SETATTR and RENAME of a symlink act on the link.
func TestSymlinkSetattrRename(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "target"), "x")
	os.Symlink("target", filepath.Join(root, "link"))
	old := time.Unix(1_000_000, 0)
	os.Chtimes(filepath.Join(root, "target"), old, old)
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	_, lh, _ := c.lookup(rootH, "link")
	st, _ := c.nfsCall(2, args(func(w *xdr.Writer) {
		w.Opaque(lh)
		w.Uint32(0)
		w.Uint32(0)
		w.Uint32(0)
		w.Uint32(0)
		w.Uint32(2)
		w.Uint32(2_000_000)
		w.Uint32(0)
		w.Uint32(2)
		w.Uint32(2_000_000)
		w.Uint32(0)
		w.Uint32(0)
	}))
	if st != 0 {
		t.Fatalf("SETATTR on symlink: status %d", st)
	}
	fi, _ := os.Stat(filepath.Join(root, "target"))
	if !fi.ModTime().Equal(old) {
		t.Fatalf("SETATTR of a symlink changed its target's mtime to %v", fi.ModTime())
	}
	st, _ = c.nfsCall(14, args(func(w *xdr.Writer) { dirop(rootH, "link")(w); dirop(rootH, "link2")(w) }))
	if st != 0 || !exists(filepath.Join(root, "target")) || !exists(filepath.Join(root, "link2")) {
		t.Fatalf("RENAME of a symlink: status %d, target exists %v", st, exists(filepath.Join(root, "target")))
	}
}

// Handles survive renames of the file and its ancestors and a
// server restart; handles from another filesystem are STALE.
func TestHandlesPersist(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			mustWrite(t, filepath.Join(root, "a", "b", "f"), "data")
			addr := start(t, k, root)
			c := dial(t, addr)
			rootH := c.mount()
			_, ah, _ := c.lookup(rootH, "a")
			_, bh, _ := c.lookup(ah, "b")
			_, fhd, _ := c.lookup(bh, "f")
			// Finder: rename a folder, then create inside it.
			st, _ := c.nfsCall(14, args(func(w *xdr.Writer) { dirop(ah, "b")(w); dirop(ah, "renamed")(w) }))
			if st != 0 {
				t.Fatalf("rename: %d", st)
			}
			mk, _ := c.nfsCall(9, args(func(w *xdr.Writer) { dirop(bh, "new")(w); emptySattr(w) }))
			// Rename an ancestor behind the server's back.
			os.Rename(filepath.Join(root, "a"), filepath.Join(root, "z"))
			ga, _ := c.getattr(fhd)
			if k != ours {
				if mk == 0 && ga == 0 {
					t.Fatalf("stock: expected a stale handle after rename")
				}
				t.Logf("stock: mkdir in renamed dir -> %d, getattr after ancestor rename -> %d", mk, ga)
				return
			}
			if mk != 0 || ga != 0 {
				t.Fatalf("ours: mkdir in renamed dir -> %d, getattr after ancestor rename -> %d", mk, ga)
			}
			if !exists(filepath.Join(root, "z", "renamed", "new")) {
				t.Fatalf("mkdir did not land in the renamed directory")
			}
			// Restart: a new server on the same tree accepts the old handles.
			c2 := dial(t, start(t, ours, root))
			if st, _ := c2.getattr(fhd); st != 0 {
				t.Fatalf("after restart: getattr -> %d", st)
			}
			// A handle from another filesystem (or forged) is STALE.
			bad := append([]byte(nil), fhd...)
			bad[5] ^= 0xff
			if st, _ := c2.getattr(bad); st != nfsErrStale {
				t.Fatalf("foreign handle: %d, want STALE", st)
			}
			// A deleted file's handle is STALE.
			os.Remove(filepath.Join(root, "z", "renamed", "f"))
			if st, _ := c2.getattr(fhd); st != nfsErrStale {
				t.Fatalf("deleted file: %d, want STALE", st)
			}
		})
	}
}

func write(c *rpcClient, h []byte, off uint64, data []byte, stable uint32) (uint32, uint32, []byte) {
	st, r := c.nfsCall(7, args(func(w *xdr.Writer) {
		w.Opaque(h)
		w.Uint64(off)
		w.Uint32(uint32(len(data)))
		w.Uint32(stable)
		w.Opaque(data)
	}))
	skipWcc(r)
	if st != 0 {
		return st, 0, nil
	}
	r.Uint32()
	return st, r.Uint32(), append([]byte(nil), r.Fixed(8)...)
}

// A WRITE is only called FILE_SYNC if it was synced; UNSTABLE
// writes are flushed by COMMIT; the verifier changes on restart.
func TestDurability(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			mustWrite(t, filepath.Join(root, "f"), "")
			var srv *Server
			var addr string
			if k == ours {
				addr, srv = startOurs(t, Options{Root: root, OwnerFromRoot: true})
			} else {
				addr = startStock(t, root, k)
			}
			c := dial(t, addr)
			_, fh, _ := c.lookup(c.mount(), "f")
			before := fsyncs.Load()
			st, committed, verf := write(c, fh, 0, []byte("hello"), 0)
			if st != 0 {
				t.Fatalf("write: %d", st)
			}
			if k != ours {
				// go-nfs claims FILE_SYNC; its billy File has no Sync, so nothing reached the disk.
				if committed != fileSync {
					t.Fatalf("stock committed=%d", committed)
				}
				t.Logf("stock: UNSTABLE write answered FILE_SYNC without any fsync")
				return
			}
			if committed != unstable {
				t.Fatalf("ours: committed=%d for an unsynced write, want UNSTABLE", committed)
			}
			if fsyncs.Load() != before {
				t.Fatalf("unstable write fsynced")
			}
			cs, r := c.nfsCall(21, args(func(w *xdr.Writer) { w.Opaque(fh); w.Uint64(0); w.Uint32(0) }))
			skipWcc(r)
			if cs != 0 || !bytes.Equal(r.Fixed(8), verf) {
				t.Fatalf("commit: status %d, verifier mismatch", cs)
			}
			if fsyncs.Load() == before {
				t.Fatalf("COMMIT did not fsync")
			}
			_, committed, _ = write(c, fh, 5, []byte("!"), fileSync)
			if committed != fileSync {
				t.Fatalf("FILE_SYNC write answered %d", committed)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "hello!" {
				t.Fatalf("file holds %q", b)
			}
			srv.Close()
			c2 := dial(t, start(t, ours, root))
			_, _, verf2 := write(c2, fh, 0, []byte("h"), 0)
			if bytes.Equal(verf, verf2) {
				t.Fatalf("write verifier unchanged across restart: clients would not resend lost writes")
			}
		})
	}
}

// CREATE EXCLUSIVE, LINK, MOUNT EXPORT, correct RPC error codes.
func TestProcedures(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			mustWrite(t, filepath.Join(root, "f"), "x")
			addr := start(t, k, root)
			c := dial(t, addr)
			rootH := c.mount()
			var defects []string
			excl := func() uint32 {
				st, _ := c.nfsCall(8, args(func(w *xdr.Writer) {
					dirop(rootH, "x.docx")(w)
					w.Uint32(2)
					w.Fixed([]byte("verifier"))
				}))
				return st
			}
			if st := excl(); st != 0 {
				defects = append(defects, "CREATE EXCLUSIVE failed")
			} else if st := excl(); st != 0 { // retransmission with the same verifier
				defects = append(defects, "retransmitted CREATE EXCLUSIVE failed")
			}
			_, fh, _ := c.lookup(rootH, "f")
			if st, _ := c.nfsCall(15, args(func(w *xdr.Writer) { w.Opaque(fh); dirop(rootH, "hard")(w) })); st != 0 {
				defects = append(defects, "LINK failed")
			} else if fi, _ := os.Stat(filepath.Join(root, "hard")); fi == nil || fi.Sys().(*syscall.Stat_t).Nlink != 2 {
				defects = append(defects, "LINK made no hard link")
			}
			rep := c.call(100005, 3, 5, nil)
			if rep.denied || rep.stat != 0 {
				defects = append(defects, "MOUNT EXPORT unavailable")
			} else if rep.body.Bool() && rep.body.String(100) != "/" {
				defects = append(defects, "EXPORT lists the wrong path")
			}
			if rep := c.call(100003, 3, 99, nil); rep.stat != 3 {
				defects = append(defects, "unknown procedure: accept_stat "+itoa(rep.stat)+", want PROC_UNAVAIL(3)")
			}
			if rep := c.call(100021, 4, 1, nil); rep.stat != 1 {
				defects = append(defects, "unknown program: accept_stat "+itoa(rep.stat)+", want PROG_UNAVAIL(1)")
			}
			// A real client: libnfs asks EXPORT while mounting.
			out, err := exec.Command("timeout", "10", "nfs-ls", nfsURL(addr, "")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), " f\n") {
				defects = append(defects, "nfs-ls failed: "+strings.TrimSpace(string(out)))
			}
			if k == ours {
				if len(defects) > 0 {
					t.Fatalf("ours: %v", defects)
				}
				return
			}
			if len(defects) == 0 {
				t.Fatalf("stock: expected defects")
			}
			t.Logf("stock defects reproduced: %v", defects)
		})
	}
}

func itoa(v uint32) string { return fmt.Sprint(v) }

// Fileid, nlink, times, special bits, fsid; FSINFO and FSSTAT; the
// attributes in LOOKUP (go-nfs) and GETATTR (ours) agree.
func TestAttributes(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "f")
			mustWrite(t, p, "abc")
			os.Link(p, filepath.Join(root, "f2"))
			os.Chmod(p, 0o4755|os.ModeSetuid)
			unix.Chmod(p, 0o4755)
			os.Chtimes(p, time.Unix(1_500_000_000, 5), time.Unix(1_600_000_000, 7))
			var st unix.Stat_t
			unix.Lstat(p, &st)
			c := dial(t, start(t, k, root))
			rootH := c.mount()
			_, fh, la := c.lookup(rootH, "f")
			_, ga := c.getattr(fh)
			var defects []string
			if ga.fileid != st.Ino {
				defects = append(defects, "fileid is not the inode")
			}
			if ga.nlink != 2 {
				defects = append(defects, "nlink is not 2")
			}
			if ga.mode != 0o4755 {
				defects = append(defects, "mode lost the setuid bit")
			}
			if ga.atime[0] != 1_500_000_000 || ga.ctime[0] != uint32(st.Ctim.Sec) {
				defects = append(defects, "atime/ctime are not the file's")
			}
			if ga.fsid == 0 {
				defects = append(defects, "fsid is 0")
			}
			if la == nil || *la != *ga {
				defects = append(defects, "LOOKUP and GETATTR attributes differ")
			}
			_, r := c.nfsCall(19, args(func(w *xdr.Writer) { w.Opaque(rootH) }))
			readPostOp(r)
			if rt := r.Uint32(); rt != maxIO {
				defects = append(defects, "FSINFO rtmax is not 1 MiB")
			}
			_, r = c.nfsCall(18, args(func(w *xdr.Writer) { w.Opaque(rootH) }))
			readPostOp(r)
			var sfs unix.Statfs_t
			unix.Statfs(root, &sfs)
			if tb := r.Uint64(); tb != sfs.Blocks*uint64(sfs.Bsize) {
				defects = append(defects, "FSSTAT total is not statfs's")
			}
			if k == ours {
				if len(defects) > 0 {
					t.Fatalf("ours: %v (getattr %+v lookup %+v)", defects, ga, la)
				}
				return
			}
			if len(defects) == 0 {
				t.Fatalf("stock: expected defects")
			}
			t.Logf("stock defects reproduced: %v", defects)
		})
	}
}

// Files appear owned by the mounting user, new files get
// the drive owner's ids, and other uids are refused.
func TestOwnershipAndAccess(t *testing.T) {
	for _, k := range []kind{stockChroot, ours} {
		t.Run(k.String(), func(t *testing.T) {
			root := t.TempDir()
			os.Chown(root, 1000, 1000)
			mustWrite(t, filepath.Join(root, "f"), "x")
			os.Chown(filepath.Join(root, "f"), 1000, 1000)
			var addr string
			if k == ours {
				addr, _ = startOurs(t, Options{Root: root, ClientUID: 501, ClientGID: 20, OwnerFromRoot: true})
			} else {
				addr = startStock(t, root, k)
			}
			c := dial(t, addr)
			c.uid, c.gid = 501, 20
			rootH := c.mount()
			var defects []string
			_, fh, _ := c.lookup(rootH, "f")
			if _, a := c.getattr(fh); a.uid != 501 || a.gid != 20 {
				defects = append(defects, "file shows uid "+fmt.Sprint(a.uid)+", not the mounting user")
			}
			c.nfsCall(8, args(func(w *xdr.Writer) { dirop(rootH, "new")(w); w.Uint32(0); emptySattr(w) }))
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(root, "new"), &st) != nil || st.Uid != 1000 || st.Gid != 1000 {
				defects = append(defects, "created file is not owned by the drive owner")
			}
			other := dial(t, addr)
			other.uid, other.gid = 502, 20
			if rep := other.call(100003, 3, 1, args(func(w *xdr.Writer) { w.Opaque(fh) })); !rep.denied {
				defects = append(defects, "uid 502 was allowed")
			}
			root0 := dial(t, addr)
			if rep := root0.call(100003, 3, 1, args(func(w *xdr.Writer) { w.Opaque(fh) })); rep.denied {
				defects = append(defects, "root was refused")
			}
			if k == ours {
				if len(defects) > 0 {
					t.Fatalf("ours: %v", defects)
				}
				return
			}
			if len(defects) == 0 {
				t.Fatalf("stock: expected defects")
			}
			t.Logf("stock defects reproduced: %v", defects)
		})
	}
}

var _ = binary.BigEndian
