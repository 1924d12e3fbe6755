package nfshandle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// AppendAt must give exactly At's handle (READDIRPLUS and LOOKUP hand out
// the same file's handle), append after what dst holds, and refuse a name
// that is not NUL-terminated.
func TestAppendAtMatchesAt(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"f", "a-longer-name-with-ünïcode", "d"} {
		if err := os.WriteFile(filepath.Join(root, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("f", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	tb, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for _, n := range []string{"f", "a-longer-name-with-ünïcode", "d", "link"} {
		want, err := tb.At(tb.RootFd(), n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tb.AppendAt([]byte("xyz"), tb.RootFd(), append([]byte(n), 0))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !bytes.Equal(got[3:], want) || string(got[:3]) != "xyz" {
			t.Errorf("%s: AppendAt %x, At %x", n, got, want)
		}
	}
	if _, err := tb.AppendAt(nil, tb.RootFd(), []byte("f")); err != unix.EINVAL {
		t.Errorf("name without NUL: %v, want EINVAL", err)
	}
	if _, err := tb.AppendAt(nil, tb.RootFd(), []byte("missing\x00")); err != unix.ENOENT {
		t.Errorf("missing name: %v, want ENOENT", err)
	}
}
