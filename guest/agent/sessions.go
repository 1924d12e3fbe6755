package agent

import (
	"context"
	"io"
	"sync"
	"time"
)

// Sessions tracks host connections for the watchdog: once a host has been connected, the VM must
// not outlive it (the host supervisor may have been killed); and a VM whose host never connects
// (the supervisor died during boot) must not run forever either.
type Sessions struct {
	mu       sync.Mutex
	active   int
	had      bool
	lastGone time.Time
	born     time.Time // when watching began; zero = never-connected VMs are not timed out
	now      func() time.Time
	wake     chan struct{} // a host left: the watchdog recomputes its deadline
}

// NeverConnectedTimeout is how long a VM waits for its first host. The host connects as QEMU
// starts, so this only fires when the host died during boot; it is long enough for a slow TCG
// boot and for a test connecting late.
const NeverConnectedTimeout = 60 * time.Second

// NewSessions starts watching now.
func NewSessions() *Sessions { return &Sessions{born: time.Now()} }

// Serve serves one host connection with the agent's control server.
func (a *Agent) Serve(ctx context.Context, s *Sessions, rw io.ReadWriteCloser, via string) error {
	first := s.begin()
	if first {
		a.tl.Step("control", a.tl.Now(), "host connected over %s", via)
	} else {
		a.tl.Logf("info", "host connected over %s", via)
	}
	err := a.srv.ServeConn(ctx, rw)
	s.end()
	a.tl.Logf("info", "host disconnected from %s", via)
	return err
}

func (s *Sessions) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Sessions) begin() (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = !s.had
	s.active++
	s.had = true
	return first
}

func (s *Sessions) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 {
		s.lastGone = s.clock()
	}
	select {
	case s.wakeLocked() <- struct{}{}:
	default:
	}
}

func (s *Sessions) wakeLocked() chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	return s.wake
}

// untilOrphaned is how long until Orphaned(d) turns true if nothing changes: 0 if it is, -1 if
// only a host leaving can make it (one is connected, or none is awaited).
func (s *Sessions) untilOrphaned(d time.Duration) (time.Duration, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wake := s.wakeLocked()
	var left time.Duration
	switch {
	case !s.had && s.born.IsZero(), s.had && s.active > 0:
		return -1, wake
	case !s.had:
		left = NeverConnectedTimeout - s.clock().Sub(s.born)
	default:
		left = d - s.clock().Sub(s.lastGone)
	}
	return max(left, 0), wake
}

// Orphaned reports whether a host was connected and none has been for at least d, or none ever
// connected within NeverConnectedTimeout.
func (s *Sessions) Orphaned(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.had {
		return !s.born.IsZero() && s.clock().Sub(s.born) >= NeverConnectedTimeout
	}
	return s.active == 0 && s.clock().Sub(s.lastGone) >= d
}

// Watchdog shuts the VM down cleanly once the host has been gone for d. It returns when ctx ends
// or after the shutdown was attempted. It sleeps until the deadline or a host leaving, never on a
// periodic tick: an idle guest should not wake.
func (a *Agent) Watchdog(ctx context.Context, s *Sessions, d time.Duration) {
	for {
		left, wake := s.untilOrphaned(d)
		if left == 0 && s.Orphaned(d) {
			a.ShutdownAndPowerOff("no host connected for "+d.String()+" (or since boot)", true)
			return
		}
		var timer *time.Timer
		var fired <-chan time.Time
		if left >= 0 {
			timer = time.NewTimer(left + 10*time.Millisecond)
			fired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}
