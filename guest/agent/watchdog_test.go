package agent

import (
	"testing"
	"time"
)

// The watchdog sleeps exactly until the host has been gone long enough (or forever while one is
// connected), and a host leaving wakes it to recompute.
func TestSessionsUntilOrphaned(t *testing.T) {
	now := time.Unix(100, 0)
	s := &Sessions{born: now, now: func() time.Time { return now }}
	const d = 10 * time.Second
	if left, _ := s.untilOrphaned(d); left != NeverConnectedTimeout {
		t.Fatalf("before any host: %v, want %v", left, NeverConnectedTimeout)
	}
	s.begin()
	if left, _ := s.untilOrphaned(d); left != -1 {
		t.Fatalf("while a host is connected: %v, want -1 (no timer)", left)
	}
	_, wake := s.untilOrphaned(d)
	now = now.Add(time.Minute)
	s.end()
	select {
	case <-wake:
	default:
		t.Fatal("a host leaving did not wake the watchdog")
	}
	now = now.Add(4 * time.Second)
	if left, _ := s.untilOrphaned(d); left != 6*time.Second {
		t.Fatalf("4 s after the host left: %v, want 6s", left)
	}
	now = now.Add(7 * time.Second)
	if left, _ := s.untilOrphaned(d); left != 0 || !s.Orphaned(d) {
		t.Fatalf("11 s after the host left: %v, orphaned %v", left, s.Orphaned(d))
	}
	if left, _ := (&Sessions{}).untilOrphaned(d); left != -1 {
		t.Fatalf("not watching never-connected VMs: %v, want -1", left)
	}
}
