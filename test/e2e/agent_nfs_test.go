//go:build vmtest

package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/luksmount/luksmount/pkg/control"
)

// TestFormatWriteRebootReadOverNFS is the guest issue's acceptance test: format a 256 MiB disk as
// LUKS2, mount, write files over NFS, shut down cleanly; boot again, fail with a wrong passphrase,
// unlock with the right one in the same VM, mount and read the files back over NFS through the
// gvproxy 127.0.0.1 forward with libnfs.
func TestFormatWriteRebootReadOverNFS(t *testing.T) {
	disk := newDisk(t, 256<<20)
	files := map[string][]byte{
		"hello.txt":       []byte("hello from the host\n"),
		"big.bin":         bytes.Repeat([]byte{0xa5, 0x5a, 0, 1}, 300_000), // 1.2 MB: several WRITEs
		"unicode-é-😀.txt": []byte("names survive\n"),
	}

	// First boot: format, unlock, mount, serve, write.
	g := boot(t, disk, bootOpts{})
	ctx, cancel := g.ctx()
	defer cancel()
	c := g.Control()
	fr := fastKDF
	fr.Label = "E2E"
	f, err := c.Format(ctx, fr, []byte(testPassphrase))
	if err != nil {
		t.Fatalf("format: %v", err)
	}
	if f.LUKSUUID == "" || f.FSUUID == "" {
		t.Fatalf("format reply = %+v; want both UUIDs", f)
	}
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte(testPassphrase)); err != nil {
		t.Fatalf("unlock after format: %v", err)
	}
	m, err := c.Mount(ctx, control.MountRequest{})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	if m.FSType != "ext4" || m.Label != "E2E" {
		t.Fatalf("mount reply = %+v; want ext4 labelled E2E", m)
	}
	s, err := c.Serve(ctx, control.ServeRequest{ClientUID: 0, ClientGID: 0})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	nfs := g.nfs(s.Export)
	for _, name := range sortedKeys(files) {
		if err := nfs.Put(ctx, name, files[name]); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	g.logTimeline("first boot")
	g.shutdown(t)

	// Second boot: wrong passphrase, then the right one in the same VM.
	g2 := boot(t, disk, bootOpts{})
	ctx2, cancel2 := g2.ctx()
	defer cancel2()
	c2 := g2.Control()
	_, err = c2.Unlock(ctx2, control.UnlockRequest{}, []byte("not the passphrase"))
	if !errors.Is(err, control.ErrWrongPassphrase) {
		t.Fatalf("unlock with a wrong passphrase = %v; want wrong-passphrase", err)
	}
	st, err := c2.Status(ctx2)
	if err != nil || st.State != control.StateReady {
		t.Fatalf("status after a wrong passphrase = %+v, %v; want the VM up and ready", st, err)
	}
	if _, err := c2.Unlock(ctx2, control.UnlockRequest{}, []byte(testPassphrase)); err != nil {
		t.Fatalf("unlock with the right passphrase in the same VM: %v", err)
	}
	if _, err := c2.Mount(ctx2, control.MountRequest{Options: []string{"noatime"}}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	s2, err := c2.Serve(ctx2, control.ServeRequest{})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	nfs2 := g2.nfs(s2.Export)
	for name, want := range files {
		got, err := nfs2.Cat(ctx2, name)
		if err != nil {
			t.Fatalf("read %s back: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s read back: sha256 %x, want %x", name, sha256.Sum256(got), sha256.Sum256(want))
		}
	}
	names, err := nfs2.Ls(ctx2, "/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if want := []string{"big.bin", "hello.txt", "lost+found", "unicode-é-😀.txt"}; !slices.Equal(names, want) {
		t.Fatalf("root listing = %q; want %q", names, want)
	}
	g2.logTimeline("second boot")
	r := g2.shutdown(t)
	t.Logf("shutdown steps: %s", fmtSteps(r.Steps))
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

func fmtSteps(ev []control.Event) string {
	var s string
	for _, e := range ev {
		s += fmt.Sprintf("%s %.3fs; ", e.Step, e.Duration)
	}
	return s
}
