//go:build linux

package nfsserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/guest/xdr"
)

// mountExt4 mounts a fresh small ext4 image at a temporary directory and
// returns it: the shape of a real export (the root of a filesystem).
func mountExt4(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (mount)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, cmd := range [][]string{
		{"truncate", "-s", "32M", img},
		{"mkfs.ext4", "-q", "-F", img},
		{"mount", "-o", "loop", img, mnt},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// A file's handle stays valid after the kernel evicts its dentry: opening it
// by handle then gives a disconnected dentry with no path, which the path
// check used to refuse as STALE (a Mac client drops writes on STALE).
func TestHandleSurvivesDentryEviction(t *testing.T) {
	root := mountExt4(t)
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	mustWrite(t, filepath.Join(root, "a/b/f"), "x")
	os.Symlink("f", filepath.Join(root, "a/b/l"))
	addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true})
	c := dial(t, addr)
	rootH := c.mount()
	bH := mustLookup(t, c, mustLookup(t, c, rootH, "a"), "b")
	fH := mustLookup(t, c, bH, "f")
	lH := mustLookup(t, c, bH, "l")
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatalf("cannot drop dentries: %v", err)
	}
	if st, a := c.getattr(fH); st != 0 || a.size != 1 {
		t.Errorf("GETATTR of a file after its dentry was evicted: status %d", st)
	}
	if st, _, _ := write(c, fH, 1, []byte("y"), 2); st != 0 {
		t.Errorf("WRITE to a file after its dentry was evicted: status %d", st)
	}
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0)
	st, r := c.nfsCall(5, args(func(w_ *xdr.Writer) { w_.Opaque(lH) }))
	if st != 0 || func() string { readPostOp(r); return r.String(100) }() != "f" {
		t.Errorf("READLINK after the link's dentry was evicted: status %d", st)
	}
}
