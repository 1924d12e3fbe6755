package nfshandle

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func pathTable(t *testing.T, root string) *Table {
	t.Helper()
	ForcePaths = true
	defer func() { ForcePaths = false }()
	tb, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	if !tb.UsesPaths() {
		t.Fatal("table does not use path handles")
	}
	return tb
}

func handleOf(t *testing.T, tb *Table, rel string) []byte {
	t.Helper()
	fd, err := unix.Open(filepath.Join(tb.RootPath(), rel), unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	h, err := tb.At(fd, "")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func dirFd(t *testing.T, tb *Table, rel string) int {
	t.Helper()
	fd, err := unix.Open(filepath.Join(tb.RootPath(), rel), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func wantPath(t *testing.T, tb *Table, h []byte, want string) {
	t.Helper()
	got, err := tb.Path(h)
	if err != nil || got != want {
		t.Fatalf("Path = %q, %v; want %q", got, err, want)
	}
}

func TestPathHandlesFollowRenamesThroughTheServer(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "b", "f"), []byte("x"), 0o644)
	tb := pathTable(t, root)
	fh, bh := handleOf(t, tb, "a/b/f"), handleOf(t, tb, "a/b")
	if len(fh) > MaxSize || len(fh)%4 != 0 {
		t.Fatalf("handle of %d bytes", len(fh))
	}
	// Rename the directory as the server does: renameat, then tell the table.
	a := dirFd(t, tb, "a")
	if err := unix.Renameat(a, "b", a, "c"); err != nil {
		t.Fatal(err)
	}
	tb.Renamed(a, "b", a, "c")
	wantPath(t, tb, fh, "a/c/f")
	wantPath(t, tb, bh, "a/c")
	if string(handleOf(t, tb, "a/c/f")) != string(fh) {
		t.Fatal("the renamed file has a new handle")
	}
	// A server restart within the agent keeps the table of this mount.
	tb2 := pathTable(t, root)
	wantPath(t, tb2, fh, "a/c/f")
	// A file made later at the old name is another file with another handle.
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	if string(handleOf(t, tb, "a/b")) == string(bh) {
		t.Fatal("a new directory at the old name took the moved one's handle")
	}
}

func TestPathHandlesGoStaleOnRemove(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	tb := pathTable(t, root)
	h := handleOf(t, tb, "f")
	r := dirFd(t, tb, "")
	unix.Unlinkat(r, "f", 0)
	tb.Removed(r, "f")
	os.WriteFile(filepath.Join(root, "f"), []byte("new"), 0o644)
	if _, err := tb.Path(h); !errors.Is(err, ErrStale) {
		t.Fatalf("old handle after remove and re-create: %v; want stale", err)
	}
	if string(handleOf(t, tb, "f")) == string(h) {
		t.Fatal("re-created file got the removed one's handle")
	}
	// Removed behind the server's back: stale too, not some other file.
	h2 := handleOf(t, tb, "f")
	os.Remove(filepath.Join(root, "f"))
	if _, _, err := tb.Open(h2, unix.O_RDONLY); !errors.Is(err, ErrStale) {
		t.Fatalf("handle of a file removed on the drive: %v; want stale", err)
	}
}

func TestPathHandlesAfterTheTableIsLost(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "d"), 0o755)
	os.WriteFile(filepath.Join(root, "d", "kept"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "d", "moved"), []byte("x"), 0o644)
	tb := pathTable(t, root)
	kept, moved := handleOf(t, tb, "d/kept"), handleOf(t, tb, "d/moved")
	d := dirFd(t, tb, "d")
	unix.Renameat(d, "moved", d, "moved2")
	tb.Renamed(d, "moved", d, "moved2")
	// A new VM: same filesystem, nothing remembered.
	sharedMu.Lock()
	shared = map[string]*pathIDs{}
	sharedMu.Unlock()
	tb2 := pathTable(t, root)
	wantPath(t, tb2, kept, "d/kept")
	if _, err := tb2.Path(moved); !errors.Is(err, ErrStale) {
		t.Fatalf("handle of a file renamed before the table was lost: %v; want stale", err)
	}
}

func TestPathHandlesStayInside(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(root, "d"), 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(root, "d", "f"), []byte("in"), 0o644)
	os.WriteFile(filepath.Join(outside, "f"), []byte("out"), 0o644)
	tb := pathTable(t, root)
	h := handleOf(t, tb, "d/f")
	// The directory is swapped for a symlink out of the tree.
	os.RemoveAll(filepath.Join(root, "d"))
	os.Symlink(outside, filepath.Join(root, "d"))
	if fd, _, err := tb.Open(h, unix.O_RDONLY); err == nil {
		unix.Close(fd)
		t.Fatal("a path handle was opened through a symlink out of the tree")
	}
}

func TestFileIDsAreIDs(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	tb := pathTable(t, root)
	handleOf(t, tb, "f")
	var st unix.Stat_t
	unix.Stat(filepath.Join(root, "f"), &st)
	id := tb.FileID(&st)
	if id == st.Ino {
		t.Fatal("fileid is the inode number, which FAT and exFAT do not keep")
	}
	if got := tb.FileIDAt(dirFd(t, tb, ""), "f", 12345); got != id {
		t.Fatalf("listing fileid %d, attribute fileid %d", got, id)
	}
	if got := tb.FileIDAt(dirFd(t, tb, ""), "..", 1); got != tb.FileIDAt(dirFd(t, tb, ""), ".", 2) {
		t.Fatal("the root's parent is not the root")
	}
}

func TestSubvolumeFileIDsDoNotCollide(t *testing.T) {
	tb, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	same := unix.Stat_t{Dev: tb.rootDev, Ino: 256}
	sub := unix.Stat_t{Dev: unix.Mkdev(0, 45), Ino: 256}
	if tb.FileID(&same) != 256 {
		t.Fatalf("fileid on the root's device = %d; want the inode", tb.FileID(&same))
	}
	if tb.FileID(&sub) == 256 {
		t.Fatal("a subvolume's root has its parent's fileid")
	}
}
