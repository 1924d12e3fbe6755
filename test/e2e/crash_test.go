//go:build vmtest

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/clientvm"
	"github.com/luksmount/luksmount/test/libnfs"
	"github.com/luksmount/luksmount/test/workload"
)

// crashRounds is how often the server is killed mid-write: the NFS issue asks for 20 with zero
// losses.
const crashRounds = 20

// TestCrashDurability: the kernel NFS client writes files and fsyncs each, then truncates and
// chmods it (SETATTRs whose replies must mean on disk); the server's QEMU is SIGKILLed while this
// is in flight. On the next boot the journal replays, `e2fsck -n` must be clean, and every file
// reported durable must be there with its exact truncated content and its new mode.
func TestCrashDurability(t *testing.T) {
	g, disk, s := serving(t, 256<<20, control.ServeRequest{})
	durable := map[string]workload.DurableRecord{} // every file the client saw made durable
	rng := rand.New(rand.NewPCG(42, 7))
	var report strings.Builder
	for round := 1; round <= crashRounds; round++ {
		killAfter := 2 + rng.IntN(10)
		var mu sync.Mutex
		got := map[string]workload.DurableRecord{}
		kill := make(chan struct{})
		killed := false
		rep := runClient(t, clientvm.Spec{
			Port: port(t, g.NFSAddr()), Export: s.Export, NoUnmount: true,
			MountOptions: "soft,timeo=20,retrans=1",
			Durable:      200, DurableKiB: 48, DurableDir: fmt.Sprintf("round%02d", round), Seed: int64(round),
		}, clientvm.Config{
			Timeout: 3 * time.Minute, Kill: kill,
			OnLine: func(l clientvm.Line) {
				if l.Kind != "durable" {
					return
				}
				d, err := workload.ParseDurableRecord(l.Manifest)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				got[d.Path] = d
				if len(got) == killAfter && !killed {
					killed = true
					g.Kill() // SIGKILL: writes of the next file are in flight
					close(kill)
				}
			},
		})
		mu.Lock()
		wasKilled := killed
		mu.Unlock()
		if !wasKilled {
			t.Fatalf("round %d: the client stopped after %d fsyncs, before the server was killed; client console:\n%s", round, len(got), rep.Console)
		}
		<-g.Done()
		for k, v := range got {
			durable[k] = v
		}

		// Reboot: unlock, mount (replays the journal), unmount, then a read-only check.
		g = boot(t, disk, bootOpts{})
		ctx, cancel := g.ctx()
		c := g.Control()
		if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte(testPassphrase)); err != nil {
			t.Fatalf("round %d: unlock after the crash: %v", round, err)
		}
		if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
			t.Fatalf("round %d: mount after the crash: %v", round, err)
		}
		if _, err := c.Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true}); err != nil {
			t.Fatalf("round %d: unmount after journal replay: %v", round, err)
		}
		if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte(testPassphrase)); err != nil {
			t.Fatal(err)
		}
		chk, err := c.Check(ctx, control.CheckRequest{})
		if err != nil {
			t.Fatalf("round %d: e2fsck: %v", round, err)
		}
		if !chk.Clean {
			t.Fatalf("round %d: e2fsck -n is not clean after the crash (exit %d):\n%s", round, chk.ExitCode, chk.Output)
		}
		if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
			t.Fatal(err)
		}
		if s, err = c.Serve(ctx, control.ServeRequest{}); err != nil {
			t.Fatal(err)
		}
		// This round's files now; every earlier round's at the end.
		lost := verifyFiles(t, g, s.Export, got)
		cancel()
		if len(lost) > 0 {
			t.Fatalf("round %d: %d fsync'd files lost or changed: %s", round, len(lost), strings.Join(lost, "; "))
		}
		fmt.Fprintf(&report, "round %2d: killed after fsync #%d, the next file in flight; e2fsck clean; %d files verified\n",
			round, killAfter, len(got))
	}
	if lost := verifyFiles(t, g, s.Export, durable); len(lost) > 0 {
		t.Fatalf("after %d crashes, %d fsync'd files lost or changed: %s", crashRounds, len(lost), strings.Join(lost, "; "))
	}
	t.Logf("%d crashes, %d fsync'd files, zero lost\n%s", crashRounds, len(durable), report.String())
	g.shutdown(t)
}

// verifyFiles reads each file back over NFS and returns what is missing or has another content
// or mode.
func verifyFiles(t *testing.T, g *guest, export string, want map[string]workload.DurableRecord) []string {
	t.Helper()
	ctx, cancel := g.ctx()
	defer cancel()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	nfs := g.nfs(export)
	var lost []string
	for _, n := range names {
		b, err := nfs.Cat(ctx, n)
		if err != nil {
			lost = append(lost, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want[n].SHA256 {
			lost = append(lost, fmt.Sprintf("%s: %d bytes with another sha256 (truncate lost?)", n, len(b)))
		}
	}
	modes := map[string]map[string]os.FileMode{} // dir -> name -> mode
	for _, n := range names {
		dir, base := path.Split(n)
		if modes[dir] == nil {
			m, err := listModes(ctx, nfs, dir)
			if err != nil {
				return append(lost, err.Error())
			}
			modes[dir] = m
		}
		if got, ok := modes[dir][base]; ok && got != want[n].Mode {
			lost = append(lost, fmt.Sprintf("%s: mode %o, want %o (chmod lost)", n, got, want[n].Mode))
		}
	}
	return lost
}

// listModes runs nfs-ls on dir and returns each entry's permission bits.
func listModes(ctx context.Context, c libnfs.Client, dir string) (map[string]os.FileMode, error) {
	u, err := c.URL(dir)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "nfs-ls", u).Output()
	if err != nil {
		return nil, fmt.Errorf("nfs-ls %s: %w", dir, err)
	}
	m := map[string]os.FileMode{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || len(f[0]) != 10 {
			continue
		}
		var mode os.FileMode
		for i, ch := range f[0][1:] {
			if ch != '-' {
				mode |= 1 << (8 - i)
			}
		}
		m[f[len(f)-1]] = mode
	}
	return m, nil
}
