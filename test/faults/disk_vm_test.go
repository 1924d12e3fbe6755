//go:build vmtest

package faults

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/bench/nfsrpc"
)

// TestPlainDriveFaults shares one plain ext4 image (no KDF: cheap under TCG) between the full-disk
// case and the damaged-filesystem case.
func TestPlainDriveFaults(t *testing.T) {
	e := newLMEnv(t)
	img := e.format("plain.img", "32M", "none")

	// Full disk (issue 11.4): writes fail with NOSPC at the client, nothing written before is
	// lost, freeing space lets the session go on, and the log says the filesystem was full.
	s := e.serve(img)
	c := nfs(s)
	rc, err := nfsrpc.Dial(s.NFSAddress)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(5 * time.Minute))
	rootFH, err := rc.Mount(s.Export)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	chunk := make([]byte, 4<<20)
	var nospc error
	// FILE_SYNC writes in 1 MiB pieces, as a client does; each file is whole or not counted.
	for i := 0; i < 20 && nospc == nil; i++ {
		rand.Read(chunk)
		name := fmt.Sprintf("fill%02d.bin", i)
		fh, err := rc.Create(rootFH, name)
		if err != nil {
			nospc = err
			break
		}
		for off := 0; off < len(chunk); off += 1 << 20 {
			if _, err := rc.Write(fh, uint64(off), chunk[off:off+1<<20], nfsrpc.FileSync); err != nil {
				nospc = err
				break
			}
		}
		if nospc == nil {
			sum := sha256.Sum256(chunk)
			want[name] = hex.EncodeToString(sum[:])
		}
	}
	var se *nfsrpc.StatusError
	if !errors.As(nospc, &se) || se.Status != 28 {
		t.Fatalf("after %d files of 4 MiB on a 32 MiB image the write failed with %v, want NFS3ERR_NOSPC (28)", len(want), nospc)
	}
	t.Logf("filled after %d files of 4 MiB: %v (NFS3ERR_NOSPC)", len(want), nospc)
	if lost := verify(t, s, want); len(lost) > 0 {
		t.Fatalf("files written before the disk filled: %s", strings.Join(lost, "; "))
	}
	var st state
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if st, _ = e.status(img); strings.HasPrefix(st.Fault, "filesystem full") {
			break
		}
	}
	if !strings.HasPrefix(st.Fault, "filesystem full") || st.State != "serving" {
		t.Fatalf("status while full: %+v", st)
	}
	for _, n := range []string{"fill00.bin", "fill01.bin"} {
		if err := rc.Remove(rootFH, n); err != nil {
			t.Fatalf("removing %s on a full disk: %v", n, err)
		}
		delete(want, n)
	}
	partial := fmt.Sprintf("fill%02d.bin", len(want)+2) // the one the disk filled on, if created
	if err := rc.Remove(rootFH, partial); err != nil && !(errors.As(err, &se) && se.Status == 2) {
		t.Fatalf("removing %s: %v", partial, err)
	}
	rand.Read(chunk)
	if err := c.Put(tctx(t, 2*time.Minute), "after.bin", chunk); err != nil {
		t.Fatalf("write after freeing 8 MiB: %v", err)
	}
	sum := sha256.Sum256(chunk)
	want["after.bin"] = hex.EncodeToString(sum[:])
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if st, _ = e.status(img); st.Fault == "" {
			break
		}
	}
	if st.Fault != "" {
		t.Errorf("status still says %q after space was freed", st.Fault)
	}
	log := e.sessionLog(s)
	if !strings.Contains(log, "the filesystem is full") || !strings.Contains(log, "space available again") {
		t.Errorf("the session log does not say the filesystem was full")
	}
	if n := strings.Count(log, "the filesystem is full"); n != 1 {
		t.Errorf("the log says the filesystem is full %d times, want once per time it filled", n)
	}
	e.must(0, "", "stop", img)
	// After a clean stop everything is on the image.
	s = e.serve(img)
	if lost := verify(t, s, want); len(lost) > 0 {
		t.Fatalf("after a remount: %s", strings.Join(lost, "; "))
	}
	e.must(0, "", "stop", img)
}
