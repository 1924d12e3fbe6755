//go:build vmtest

package cli

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stopRounds is how many serve/write/stop rounds TestStopSaysStopped runs: a few in make test,
// LUKSMOUNT_STOP_ROUNDS=50 in make soak (issue 11's stress figure).
func stopRounds(t *testing.T) int {
	n := 4
	if v := os.Getenv("LUKSMOUNT_STOP_ROUNDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("LUKSMOUNT_STOP_ROUNDS=%q: want a positive number", v)
		}
	}
	return n
}

// TestStopSaysStopped: a stop that worked exits 0 and says "stopped", every time; the session is
// gone when it returns, the log shows a requested (not an unexpected) QEMU exit, and what was
// written before the stop is there at the next serve.
func TestStopSaysStopped(t *testing.T) {
	t0 := time.Now()
	e := newEnv(t)
	img := e.format("stops.img", "64M")
	rounds := stopRounds(t)
	failed := 0
	var prev []byte
	for i := 1; i <= rounds; i++ {
		e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
		s := e.find(img)
		c := nfsClient(s)
		if prev != nil {
			got, err := c.Cat(ctx(t), fmt.Sprintf("round-%d.txt", i-1))
			if err != nil || !bytes.Equal(got, prev) {
				t.Fatalf("round %d: read back %q (%v); want %q from the round before", i, got, err, prev)
			}
		}
		prev = []byte(fmt.Sprintf("round %d at %s\n", i, time.Now().Format(time.RFC3339Nano)))
		if err := c.Put(ctx(t), fmt.Sprintf("round-%d.txt", i), prev); err != nil {
			t.Fatalf("round %d: write: %v", i, err)
		}
		r := e.lm("", "stop", img)
		ok := r.code == 0 && strings.Contains(r.stdout, "stopped "+img)
		if !ok {
			failed++
			t.Errorf("round %d: stop did not say it stopped: %s", i, r)
		}
		// Whatever stop said, the session must really be over before the next round.
		waitGone(t, 30*time.Second, s.VMPid, s.SupervisorPid)
		if left := e.status(); len(left) != 0 {
			t.Fatalf("round %d: sessions after stop: %+v", i, left)
		}
		if ok && (alive(s.VMPid) || alive(s.SupervisorPid)) {
			t.Errorf("round %d: stop said stopped while pids %d/%d lived", i, s.VMPid, s.SupervisorPid)
		}
	}
	log := e.mustLM(0, "", "log", img).stdout
	if strings.Contains(log, "unexpected") {
		t.Errorf("the log calls a requested shutdown unexpected:\n%s", log)
	}
	t.Logf("stops tried %d, failed %d", rounds, failed)
	result := "all said stopped"
	if failed > 0 {
		result = fmt.Sprintf("FAILED: %d did not say stopped", failed)
	}
	t.Logf("SOAK|serve, write, stop|%d rounds|%s|%s", rounds, result, time.Since(t0).Round(time.Second))
}
