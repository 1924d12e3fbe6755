package libnfs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/nfsserver"
)

func TestURL(t *testing.T) {
	u, err := Client{Addr: "127.0.0.1:40123", Export: "/", UID: 501, GID: 20}.URL("dir/a b.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := "nfs://127.0.0.1//dir/a b.txt?gid=20&mountport=40123&nfsport=40123&uid=501&version=3"
	if u != want {
		t.Fatalf("URL = %s; want %s", u, want)
	}
	if _, err := (Client{Addr: "nope"}).URL("x"); err == nil {
		t.Fatal("URL with a bad address succeeded")
	}
}

// TestAgainstServer runs the real libnfs tools against our NFS server on loopback, proving both
// the wrapper and the basic read/write path.
func TestAgainstServer(t *testing.T) {
	for _, tool := range []string{"nfs-ls", "nfs-cat", "nfs-cp"} {
		if _, err := os.Stat("/usr/bin/" + tool); err != nil {
			t.Fatalf("%s is missing: run `make deps` (package libnfs-utils)", tool)
		}
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := nfsserver.New(nfsserver.Options{Root: root, ClientUID: uint32(os.Getuid()), ClientGID: uint32(os.Getgid()), OwnerFromRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c := Client{Addr: l.Addr().String(), Export: "/", UID: os.Getuid(), GID: os.Getgid()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Put(ctx, "new file.bin", []byte("payload")); err != nil {
		t.Fatal(err)
	}
	names, err := c.Ls(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"hello.txt", "new file.bin"}) {
		t.Fatalf("Ls = %q", names)
	}
	got, err := c.Cat(ctx, "hello.txt")
	if err != nil || string(got) != "hi\n" {
		t.Fatalf("Cat = %q, %v", got, err)
	}
	// libnfs mounts a file's directory as the export: subdirectories are mountable, symlinks
	// (here one pointing out of the tree) are not.
	if err := os.MkdirAll(filepath.Join(root, "sub", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "sub", "deeper", "x.txt"), []byte("deep\n"), 0o644)
	os.Symlink("/etc", filepath.Join(root, "out"))
	if got, err := c.Cat(ctx, "sub/deeper/x.txt"); err != nil || string(got) != "deep\n" {
		t.Fatalf("Cat in a subdirectory = %q, %v", got, err)
	}
	if got, err := c.Cat(ctx, "out/hostname"); err == nil {
		t.Fatalf("Cat through a symlink out of the export read %q", got)
	}
	onDisk, err := os.ReadFile(filepath.Join(root, "new file.bin"))
	if err != nil || string(onDisk) != "payload" {
		t.Fatalf("file written over NFS holds %q, %v", onDisk, err)
	}
}
