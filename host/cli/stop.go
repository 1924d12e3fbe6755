package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/host/timelog"
)

func (e *env) stopCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "stop",
		Usage:     "unmount, then shut the VM down cleanly (--force: kill it)",
		ArgsUsage: "[TARGET|MOUNTPOINT|--all]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "unmount even if busy; kill the VM if it does not stop"},
			&ucli.BoolFlag{Name: "all", Usage: "stop every session"},
		},
		Action: e.stop,
	}
}

func (e *env) stop(c *ucli.Context) error {
	reg := supervisor.Registry()
	var targets []session.State
	switch {
	case c.Bool("all") && c.NArg() > 0:
		return usagef("give a TARGET or --all, not both")
	case c.NArg() > 1:
		return usagef("stop takes one TARGET or MOUNTPOINT")
	case c.Bool("all"):
		all, err := reg.List()
		if err != nil {
			return err
		}
		targets = all
	case c.NArg() == 1:
		st, err := reg.Find(c.Args().First())
		if err != nil {
			return err
		}
		targets = []session.State{*st}
	default:
		all, err := reg.List()
		if err != nil {
			return err
		}
		switch len(all) {
		case 0:
			return fmt.Errorf("%w to stop", session.ErrNoSession)
		case 1:
			targets = all
		default:
			return usagef("%d sessions are running: name one (see `luksmount status`) or use --all", len(all))
		}
	}
	var firstErr error
	for _, st := range targets {
		err := stopOne(reg, st, c.Bool("force"))
		if err != nil {
			fmt.Fprintln(e.stderr, Message(err))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fmt.Fprintf(e.stdout, "stopped %s\n", st.Target)
	}
	if firstErr != nil {
		return &silentError{ExitCode(firstErr)}
	}
	return nil
}

// stopOne asks the supervisor to stop; with force, a supervisor that can't be reached or doesn't
// finish is killed along with its VM, and a stale mount is forced off.
func stopOne(reg *session.Registry, st session.State, force bool) error {
	dir := reg.Dir(st.ID)
	if dir == "" {
		return nil // ended meanwhile
	}
	err := supervisor.RequestStop(session.SocketPath(filepath.Dir(dir), st.ID), force)
	if err == nil {
		return waitGone(reg, st, 60*time.Second)
	}
	if _, ferr := reg.Find(st.ID); errors.Is(err, supervisor.ErrNoAnswer) || errors.Is(ferr, session.ErrNoSession) {
		// No answer, or none possible because the session ended meanwhile: find out how it ended.
		return afterDroppedStop(reg, st, err)
	}
	if errors.Is(err, supervisor.ErrMountBusy) && !force {
		return fmt.Errorf("cannot stop %s: %w", st.Target, err)
	}
	if !force {
		return fmt.Errorf("cannot stop %s: %w; retry with --force", st.Target, err)
	}
	// Forced: kill what is left.
	if st.VMPid > 0 {
		syscall.Kill(st.VMPid, syscall.SIGKILL)
	}
	if st.SupervisorPid > 0 && st.SupervisorPid != os.Getpid() {
		syscall.Kill(st.SupervisorPid, syscall.SIGKILL)
	}
	if st.Mountpoint != "" {
		supervisor.ForceUnmount(context.Background(), st.Mountpoint) // the VM is dead: straight to force, bounded
	}
	return waitGone(reg, st, 10*time.Second)
}

func waitGone(reg *session.Registry, st session.State, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := reg.Find(st.ID); errors.Is(err, session.ErrNoSession) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: the supervisor (pid %d) is still running after %s; retry with --force", st.Target, st.SupervisorPid, timeout)
}

// droppedStopWait is how long a session that took a stop request but did not answer may take to end.
var droppedStopWait = 60 * time.Second

// afterDroppedStop finds out what became of a session whose supervisor took a stop request but
// never answered: it ended if its lock is released and its VM is gone, and the session log says
// whether the shutdown was clean.
func afterDroppedStop(reg *session.Registry, st session.State, cause error) error {
	if err := waitGone(reg, st, droppedStopWait); err != nil {
		return fmt.Errorf("cannot stop %s: %w, and the session is still running (supervisor pid %d); retry, or use --force", st.Target, cause, st.SupervisorPid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pidAlive(st.VMPid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot stop %s: its supervisor ended without answering, but QEMU (pid %d) still runs; use `luksmount stop --force`", st.Target, st.VMPid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if why := sessionOutcome(st.Log); why != "" {
		return fmt.Errorf("%w: %s ended, but %s; see `luksmount log %s`", supervisor.ErrUncleanShutdown, st.Target, why, st.Target)
	}
	return nil
}

// sessionOutcome reads how the last session in a log ended: "" for a clean end.
func sessionOutcome(logPath string) string {
	data, err := os.ReadFile(logPath)
	if logPath == "" || err != nil {
		return "its log cannot be read"
	}
	last := string(timelog.LastSession(data))
	if i := strings.LastIndex(last, "session failed: "); i >= 0 {
		line, _, _ := strings.Cut(last[i+len("session failed: "):], "\n")
		return "it failed: " + line
	}
	if !strings.Contains(last, "session ended after") {
		return "its supervisor ended without finishing the log"
	}
	return ""
}

func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
