//go:build vmtest

package faults

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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

	// Damaged filesystem (issue 11.5). First the kernel's own mark: a filesystem flagged as having
	// errors is mounted read-only, with a message that points to `luksmount check`.
	debugfs(t, img, "ssv state 3", "ssv error_count 1")
	r := e.must(0, "", "--no-mount", "--accel", "tcg", img)
	if st, _ = e.status(img); !st.ReadOnly || !strings.Contains(st.Fault, "luksmount check") {
		t.Fatalf("a filesystem marked with errors: %+v\n%s", st, r)
	}
	if !strings.Contains(r.stderr, "read-only") || !strings.Contains(r.stderr, "luksmount check") {
		t.Errorf("the mount did not tell the user:\n%s", r.stderr)
	}
	e.must(0, "", "stop", img)

	// Then real damage: the root inode cleared. The mount is refused with a pointer to check;
	// check finds it (with progress), --repair asks, writes only after "y", and the drive mounts.
	debugfs(t, img, "clri <2>")
	before := fileSum(t, img)
	r = e.must(8, "", "--no-mount", "--accel", "tcg", img)
	if !strings.Contains(r.stderr, "damaged") || !strings.Contains(r.stderr, "luksmount check --repair") {
		t.Fatalf("mounting a damaged filesystem:\n%s", r)
	}
	// The kernel's failed mount may record the error in the superblock (that is ext4's own
	// bookkeeping, which e2fsck reads); from here on nothing may change without a yes.
	before = fileSum(t, img)
	r = e.must(8, "n\n", "check", "--repair", "--accel", "tcg", img)
	if !strings.Contains(r.stdout, "Root inode") || !strings.Contains(r.stderr, "Repair them now?") || !strings.Contains(r.stderr, "repair declined") {
		t.Fatalf("check --repair answered no:\n%s", r)
	}
	// The checker's own progress (its pass, or its bar's percentage) reaches the terminal with the
	// time elapsed; that a long check reports every 2 s is unit-tested (guest/agent) with a slow
	// e2fsck, as this one takes well under 2 s.
	if !regexp.MustCompile(`e2fsck -n -f -C 0 /dev/vda: .*(pass \d of 5|% done).*elapsed`).MatchString(r.stderr) {
		t.Errorf("check showed no progress:\n%s", r.stderr)
	}
	if fileSum(t, img) != before {
		t.Fatal("a declined repair changed the image")
	}
	r = e.must(0, "y\n", "check", "--repair", "--accel", "tcg", img)
	if !strings.Contains(r.stdout, "repaired the ext4 filesystem") {
		t.Fatalf("check --repair answered yes:\n%s", r)
	}
	r = e.must(0, "", "check", "--accel", "tcg", img)
	if !strings.Contains(r.stdout, "is clean") {
		t.Fatalf("check after the repair:\n%s", r)
	}
	s = e.serve(img)
	if st, _ = e.status(img); st.ReadOnly || st.Fault != "" {
		t.Fatalf("after the repair: %+v", st)
	}
	e.must(0, "", "stop", img)
}

// debugfs runs debugfs -w requests on a plain ext4 image (on the host: it is not encrypted).
func debugfs(t *testing.T, img string, reqs ...string) {
	t.Helper()
	for _, r := range reqs {
		if out, err := exec.Command("debugfs", "-w", "-R", r, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v\n%s", r, err, out)
		}
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
