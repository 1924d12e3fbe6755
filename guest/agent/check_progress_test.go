package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// slowTools makes cryptsetup's KDF and mkfs last until the agent has reported progress while
// they run (ticks: one per periodic report), printing what the real ones print. Waiting for the
// reports, not sleeping a fixed time, keeps the test exact on a loaded machine.
type slowTools struct {
	inner command.Runner
	ticks chan struct{}
}

// waitTicks waits for n periodic reports made from now on (10 s at most: then the test fails on
// the missing lines).
func (s slowTools) waitTicks(n int) {
	for {
		select {
		case <-s.ticks:
			continue // reports of an earlier step
		default:
		}
		break
	}
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-s.ticks:
		case <-timeout:
			return
		}
	}
}

func (s slowTools) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	switch {
	case c.Name == "cryptsetup" && (c.Args[0] == "open" || c.Args[0] == "luksFormat"):
		s.waitTicks(2)
	case c.Name == "mkfs.ext4":
		for i := 0; i <= 3; i++ {
			if c.Output != nil {
				c.Output("Writing inode tables:  " + string(rune('0'+i)) + "/3")
			}
			s.waitTicks(1)
		}
	}
	return s.inner.Run(ctx, c)
}

// TestLongStepsReportProgress: key derivation (format and unlock) and mkfs report progress, with
// the time elapsed, at least every progressEvery.
func TestLongStepsReportProgress(t *testing.T) {
	old := progressEvery
	progressEvery = 25 * time.Millisecond
	defer func() { progressEvery = old }()
	a, f := newTestAgent(t)
	slow := slowTools{f, make(chan struct{}, 1000)}
	a.deps.Run = slow
	a.crypt.Run = a.deps.Run
	var mu sync.Mutex
	byStep := map[string][]string{}
	a.tl.AddSink(func(ev control.Event) {
		if ev.Kind == control.EventProgress {
			mu.Lock()
			byStep[ev.Step] = append(byStep[ev.Step], ev.Message)
			mu.Unlock()
			if strings.Contains(ev.Message, "elapsed") {
				slow.ticks <- struct{}{}
			}
		}
	})
	c := client(t, a)
	ctx := context.Background()
	if _, err := c.Format(ctx, control.FormatRequest{Type: "luks2", Label: "x"}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	format, unlock := strings.Join(byStep["format"], "\n"), strings.Join(byStep["unlock"], "\n")
	if !strings.Contains(format, "creating a luks2 container") || !strings.Contains(format, "writing inode tables 3/3") ||
		strings.Count(format, "elapsed") < 4 {
		t.Fatalf("format progress:\n%s", format)
	}
	if strings.Count(unlock, "deriving the key") < 3 || !strings.Contains(unlock, "elapsed") {
		t.Fatalf("unlock progress:\n%s", unlock)
	}
}
