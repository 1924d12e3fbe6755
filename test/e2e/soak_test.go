//go:build vmtest && soak

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/clientvm"
)

// The soak tier (`make soak`, never in `make test`): long runs of what the VM tier runs briefly.
// Sizes come from the environment (build.sh soak sets them; SOAK_SCALE=small shrinks them to
// prove the wiring in a few minutes).

// TestSoakFSX runs fsx through the kernel NFS client for LUKSMOUNT_SOAK_FSX_SECONDS (1 h).
func TestSoakFSX(t *testing.T) {
	markStart(t)
	secs := envInt("LUKSMOUNT_SOAK_FSX_SECONDS", 3600)
	g, _, s := serving(t, 512<<20, control.ServeRequest{}, bootOpts{lifetime: time.Duration(secs)*time.Second + 30*time.Minute})
	rep := runClient(t, clientvm.Spec{
		Port: port(t, g.NFSAddr()), Export: s.Export, MountOptions: "rsize=1048576,wsize=1048576",
		Run: "^fsx$", FSXSeconds: secs, Seed: time.Now().UnixNano(),
	}, clientvm.Config{Timeout: time.Duration(secs)*time.Second + 20*time.Minute, Memory: 768})
	if !rep.Done || rep.Failed > 0 || rep.Passed != 1 {
		t.Logf("client console:\n%s", rep.Console)
		t.Fatalf("fsx for %d s: %d passed, %d failed, finished=%v", secs, rep.Passed, rep.Failed, rep.Done)
	}
	soakRow(t, "fsx, kernel client", fmt.Sprintf("%d s", secs), "all operations verified")
	g.shutdown(t)
}

// TestSoakConcurrentWriters runs the 8-writer scenario (each writer's file, then disjoint
// pwrites into one file, every byte read back and verified) again and again for
// LUKSMOUNT_SOAK_WRITERS_SECONDS (10 min) on one served drive.
func TestSoakConcurrentWriters(t *testing.T) {
	markStart(t)
	secs := envInt("LUKSMOUNT_SOAK_WRITERS_SECONDS", 600)
	writers := envInt("LUKSMOUNT_SOAK_WRITERS", 8)
	g, _, s := serving(t, 512<<20, control.ServeRequest{}, bootOpts{lifetime: time.Duration(secs)*time.Second + 30*time.Minute})
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	rounds := 0
	for rounds == 0 || time.Now().Before(deadline) {
		rounds++
		rep := runClient(t, clientvm.Spec{
			Port: port(t, g.NFSAddr()), Export: s.Export, Run: "^concurrent-writers$", Writers: writers, Seed: int64(rounds),
		}, clientvm.Config{Timeout: 15 * time.Minute})
		if !rep.Done || rep.Failed > 0 || rep.Passed != 1 {
			t.Logf("client console:\n%s", rep.Console)
			t.Fatalf("round %d of concurrent writers: %d passed, %d failed: %s", rounds, rep.Passed, rep.Failed, strings.Join(rep.Errors(), "; "))
		}
	}
	soakRow(t, "concurrent writers + readers, kernel client", fmt.Sprintf("%d writers, %d s", writers, secs),
		fmt.Sprintf("%d rounds, every byte verified", rounds))
	g.shutdown(t)
}
