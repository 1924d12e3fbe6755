//go:build vmtest

package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/test/clientvm"
	"github.com/luksmount/luksmount/test/workload"
)

// maxWait is the longest any command may take while the drive is gone (issue 11.3).
const maxWait = 10 * time.Second

// TestDriveUnpluggedMidWrite: the kernel NFS client writes and fsyncs files; after a few, the drive
// is "unplugged" under the running session (QEMU: every read, write and flush fails with EIO).
// luksmount must notice, say so in status and the log, make the client's calls fail with EIO
// instead of hanging, and stop the VM; no command waits more than 10 s. Plugged back (the image is
// intact), it mounts again, the journal replays, every fsync'd file is there, byte for byte, and
// e2fsck -n is clean.
func TestDriveUnpluggedMidWrite(t *testing.T) {
	e := newLMEnv(t)
	img := e.format("usb.img", "64M", "luks2")
	s := e.serve(img)
	qmp := filepath.Join(e.run, s.ID, "vm", "qmp.sock")

	var mu sync.Mutex
	durable := map[string]string{}
	var unpluggedAt, clientErrAt time.Time
	var clientErr string
	kill := make(chan struct{})
	unplugged := make(chan struct{})
	const unplugAfter = 6
	go func() {
		<-unplugged
		// Let the client run into the dead drive, then stop it.
		select {
		case <-time.After(20 * time.Second):
		case <-t.Context().Done():
		}
		close(kill)
	}()
	kernel := filepath.Join(root, "build", "amd64", "vmlinuz")
	image := filepath.Join(root, "build", "amd64", "initramfs-nfsclient.cpio.lz4")
	rep, err := clientvm.Run(t.Context(), clientvm.Config{
		Arch: "amd64", Kernel: kernel, Image: image, Dir: t.TempDir(), Timeout: 4 * time.Minute, Kill: kill,
		Spec: clientvm.Spec{
			Port: nfsPort(t, s.NFSAddress), Export: s.Export, NoUnmount: true,
			MountOptions: "soft,timeo=20,retrans=1",
			Durable:      400, DurableKiB: 48, DurableDir: "usb", Seed: 11,
		},
		OnLine: func(l clientvm.Line) {
			mu.Lock()
			defer mu.Unlock()
			switch l.Kind {
			case "durable":
				if !unpluggedAt.IsZero() {
					return // fsync returned after the unplug: it cannot have reached the drive
				}
				d, err := workload.ParseDurableRecord(l.Manifest)
				if err != nil {
					t.Errorf("client's durable line: %v", err)
					return
				}
				durable[d.Path] = d.SHA256
				if len(durable) == unplugAfter {
					ctx := tctx(t, 10*time.Second)
					if err := vm.Unplug(ctx, qmp, 0); err != nil {
						t.Errorf("unplug: %v", err)
					}
					unpluggedAt = time.Now()
					close(unplugged)
				}
			case "error":
				if clientErrAt.IsZero() && !unpluggedAt.IsZero() {
					clientErrAt, clientErr = time.Now(), l.Error
				}
			}
		},
	})
	if err != nil && rep == nil {
		t.Fatalf("client VM: %v", err)
	}
	mu.Lock()
	if unpluggedAt.IsZero() {
		mu.Unlock()
		t.Fatalf("the client stopped after %d fsyncs, before the unplug: %v\n%s", len(durable), rep.Errors(), rep.Console)
	}
	want := make(map[string]string, len(durable))
	for k, v := range durable {
		want[k] = v
	}
	failAfter := clientErrAt.Sub(unpluggedAt)
	mu.Unlock()

	// The client's calls failed, with EIO, well within the limit.
	if clientErrAt.IsZero() {
		t.Fatalf("the client saw no error in the 20 s after the unplug (hung?); console:\n%s", rep.Console)
	}
	if !strings.Contains(strings.ToLower(clientErr), "input/output error") {
		t.Errorf("client error after the unplug: %q, want EIO (input/output error)", clientErr)
	}
	if failAfter > maxWait {
		t.Errorf("the client's first call failed %s after the unplug, limit %s", failAfter.Round(time.Millisecond), maxWait)
	}

	// status says so (it was polled while the client ran into the dead drive, above; now check
	// the final word and that every status call was quick).
	var st state
	longest := failAfter
	for deadline := time.Now().Add(maxWait); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var r run
		st, r = e.status(img)
		longest = max(longest, r.took)
		// drive-lost is set the moment the drive stops answering, the VM pid cleared once
		// QEMU is gone (a moment later): wait for both.
		if st.State == "drive-lost" && st.VMPid == 0 {
			break
		}
	}
	if st.State != "drive-lost" || !strings.Contains(st.Fault, "stopped answering") || st.VMPid != 0 {
		t.Fatalf("status after the unplug: %+v", st)
	}
	table := e.must(0, "", "status")
	if !strings.Contains(table.stdout, "drive-lost") || !strings.Contains(table.stdout, "stopped answering") {
		t.Errorf("status table does not tell the user:\n%s", table.stdout)
	}
	log := e.sessionLog(s)
	for _, w := range []string{"ERROR: the drive stopped answering", "BLOCK_IO_ERROR", "Input/output error", "waiting for `luksmount stop`"} {
		if !strings.Contains(log, w) {
			t.Errorf("session log lacks %q", w)
		}
	}
	if strings.Contains(log, "unexpected") {
		t.Errorf("the log calls the VM stop luksmount asked for unexpected")
	}
	// The export is gone, and says so at once rather than hanging.
	t0 := time.Now()
	if _, err := nfs(st).Cat(tctx(t, 30*time.Second), "usb/d00000.bin"); err == nil {
		t.Errorf("reading through the old export worked after the drive went away")
	}
	longest = max(longest, time.Since(t0))
	stop := e.must(0, "", "stop", img)
	longest = max(longest, stop.took)
	if longest > maxWait {
		t.Errorf("a command waited %s after the unplug, limit %s", longest.Round(time.Millisecond), maxWait)
	}
	t.Logf("unplugged after %d fsync'd files; client's first error %s later (%s); longest command wait %s (stop took %s)",
		len(want), failAfter.Round(time.Millisecond), clientErr, longest.Round(time.Millisecond), stop.took.Round(time.Millisecond))

	// Plugged back in: mount again (the journal replays), every fsync'd file intact.
	s = e.serve(img)
	lost := verify(t, s, want)
	if len(lost) > 0 {
		t.Fatalf("%d of %d fsync'd files lost or changed after the unplug: %s", len(lost), len(want), strings.Join(lost, "; "))
	}
	e.must(0, "", "stop", img)
	// The journal replayed into a consistent filesystem: e2fsck -n (through luksmount check).
	chk := e.must(0, passphrase+"\n", "check", "--accel", "tcg", img)
	if !strings.Contains(chk.stdout, "is clean") {
		t.Fatalf("check after the replug:\n%s", chk)
	}
	t.Logf("after replug: %d fsync'd files verified, 0 bytes lost; e2fsck -n clean", len(want))
}

// verify reads each file back over NFS and returns what is missing or different.
func verify(t *testing.T, s state, want map[string]string) []string {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	c := nfs(s)
	var lost []string
	for _, n := range names {
		b, err := c.Cat(tctx(t, time.Minute), n)
		if err != nil {
			lost = append(lost, n+": "+err.Error())
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want[n] {
			lost = append(lost, n+": content differs")
		}
	}
	return lost
}
