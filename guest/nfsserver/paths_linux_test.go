package nfsserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/nfshandle"
	"github.com/luksmount/luksmount/guest/xdr"
)

const pathHandlesEnv = "LUKSMOUNT_TEST_PATH_HANDLES"

// forceSyncDirs: the re-run also fsyncs every changed directory, as on btrfs and NTFS.
var forceSyncDirs bool

func TestMain(m *testing.M) {
	if os.Getenv(pathHandlesEnv) == "1" {
		nfshandle.ForcePaths, forceSyncDirs = true, true
	}
	os.Exit(m.Run())
}

// TestSuiteWithPathHandles runs the server's tests again with the path handles FAT, exFAT and
// NTFS (ntfs-3g) get, on the test's own filesystem, and with SyncDirs (btrfs, NTFS).
func TestSuiteWithPathHandles(t *testing.T) {
	if nfshandle.ForcePaths {
		t.Skip("already running with path handles")
	}
	if testing.Short() {
		t.Skip("runs the whole suite again")
	}
	// Left out, as path handles differ on purpose (nfshandle doc, "Path handles"): a rename made
	// on the drive behind the server's back stales handles; LINK is NOTSUPP; fileids are ids,
	// not inode numbers. paths_test.go in nfshandle checks what path handles promise instead.
	// The O_PATH fd cache serves kernel handles only (Open returns a path for path handles).
	skip := "TestSuiteWithPathHandles|Benchmark|TestHandlesPersist|TestProcedures|TestAttributes|TestPathCacheStaysTruthful"
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.skip", skip)
	cmd.Env = append(os.Environ(), pathHandlesEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		if len(lines) > 200 {
			lines = lines[len(lines)-200:]
		}
		t.Fatalf("server tests with path handles failed: %v\n%s", err, strings.Join(lines, "\n"))
	}
}

// With FixedAttrs (FAT, exFAT, NTFS) a SETATTR that would change the mode is PERM and changes
// nothing; one that sets the mode already there succeeds (cp -p, Finder).
func TestFixedAttrsRefuseModeChanges(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	os.WriteFile(p, []byte("x"), 0o644)
	os.Chmod(p, 0o644)
	addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true, FixedAttrs: true})
	c := dial(t, addr)
	_, fh, _ := c.lookup(c.mount(), "f")
	setMode := func(mode uint32) uint32 {
		st, _ := c.nfsCall(2, args(func(w *xdr.Writer) {
			w.Opaque(fh)
			w.Bool(true)
			w.Uint32(mode)
			for i := 0; i < 5; i++ {
				w.Uint32(0) // uid, gid, size: not set; atime, mtime: don't change
			}
			w.Bool(false) // no guard
		}))
		return st
	}
	if st := setMode(0o600); st != nfsErrPerm {
		t.Fatalf("SETATTR mode 0600 = %d; want NFS3ERR_PERM", st)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode changed to %o", fi.Mode().Perm())
	}
	if st := setMode(0o644); st != 0 {
		t.Fatalf("SETATTR to the same mode = %d; want OK", st)
	}
	// mkstemp over NFS: EXCLUSIVE CREATE, then SETATTR of mode 0600: part of the create.
	st, r := c.nfsCall(8, args(func(w *xdr.Writer) {
		dirop(c.mount(), "tmp")(w)
		w.Uint32(2) // EXCLUSIVE
		w.Fixed([]byte("verf1234"))
	}))
	if st != 0 || !r.Bool() {
		t.Fatalf("EXCLUSIVE CREATE = %d", st)
	}
	fh = append([]byte(nil), r.Opaque(64)...)
	if st := setMode(0o600); st != 0 {
		t.Fatalf("SETATTR completing an EXCLUSIVE CREATE = %d; want OK (the mode is dropped)", st)
	}
	if st := setMode(0o640); st != nfsErrPerm {
		t.Fatalf("a later SETATTR mode 0640 = %d; want NFS3ERR_PERM", st)
	}
}
