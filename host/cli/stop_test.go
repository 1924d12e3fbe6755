package cli

import (
	"bufio"
	"errors"
	"net"
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

// stopOne itself takes that path: a supervisor that reads the stop, ends the session and hangs up
// without answering (issue 11.1: it exited before its reply was written) is reported stopped.
func TestStopOneAfterAHangUpReportsStopped(t *testing.T) {
	defer func(d time.Duration) { droppedStopWait = d }(droppedStopWait)
	droppedStopWait = 5 * time.Second
	dir, err := os.MkdirTemp("", "lmstop") // short: unix socket path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	reg := &session.Registry{Dirs: []string{filepath.Join(dir, "run")}, UID: -1, GID: -1}
	logPath := filepath.Join(dir, "s.log")
	s, err := reg.Create(session.State{Target: "/img", Log: logPath})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", session.SocketPath(reg.Dirs[0], s.State.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		bufio.NewReader(c).ReadString('\n')
		os.WriteFile(logPath, []byte("=== luksmount devel: mount /img\n10:00:01.000 +2.00s host session ended after 2.00s\n"), 0o600)
		s.Close()
		c.Close() // no answer
	}()
	if err := stopOne(reg, s.State, false); err != nil {
		t.Fatalf("a stop whose supervisor ended the session and hung up: %v; want stopped", err)
	}
}
