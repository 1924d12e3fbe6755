package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
)

// A stop whose answer was lost reports what really happened: stopped (clean log), stopped but
// unclean (the log says the session failed), or still running.
func TestStopAfterDroppedConnectionTellsTheTruth(t *testing.T) {
	defer func(d time.Duration) { droppedStopWait = d }(droppedStopWait)
	droppedStopWait = 300 * time.Millisecond
	dir := t.TempDir()
	reg := &session.Registry{Dirs: []string{filepath.Join(dir, "run")}, UID: -1, GID: -1}
	logPath := filepath.Join(dir, "s.log")
	cause := supervisor.ErrNoAnswer

	s, err := reg.Create(session.State{Target: "/img", Log: logPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := afterDroppedStop(reg, s.State, cause); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("live session: %v; want \"still running\"", err)
	}
	st := s.State
	s.Close() // the supervisor ended: lock released

	os.WriteFile(logPath, []byte("=== luksmount devel: mount /img\n10:00:00.000 +1.00s host guest shutdown 0.1s synced=true unmounted=true closed=true\n10:00:01.000 +2.00s host session ended after 2.00s\n"), 0o600)
	if err := afterDroppedStop(reg, st, cause); err != nil {
		t.Fatalf("ended cleanly: %v; want nil (stopped)", err)
	}
	os.WriteFile(logPath, []byte("=== luksmount devel: mount /img\n10:00:01.000 +2.00s host session failed: the guest did not shut down cleanly: closed=false\n10:00:01.000 +2.00s host session ended after 2.00s\n"), 0o600)
	err = afterDroppedStop(reg, st, cause)
	if !errors.Is(err, supervisor.ErrUncleanShutdown) || !strings.Contains(err.Error(), "closed=false") {
		t.Fatalf("ended uncleanly: %v", err)
	}
	os.WriteFile(logPath, []byte("=== luksmount devel: mount /img\n10:00:00.000 +1.00s host guest shutdown\n"), 0o600)
	if err := afterDroppedStop(reg, st, cause); err == nil || !strings.Contains(err.Error(), "without finishing the log") {
		t.Fatalf("supervisor killed mid-way: %v", err)
	}
}
