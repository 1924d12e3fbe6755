package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
)

// ErrDriveLost ends a session whose drive stopped answering (unplugged, dock dropped it, failed).
var ErrDriveLost = errors.New("the drive went away")

// Deadlines once the drive is gone: nothing written now can reach it, so the steps only release
// what is held. Together they keep every command under 10 s (test/faults measures it).
var (
	lostUnmountTimeout  = 4 * time.Second
	lostShutdownTimeout = 3 * time.Second
	lostExitTimeout     = 2 * time.Second
)

// Guest fault events (guest/agent/fswatch.go) carry one of these steps.
const (
	FaultDrive    = "fault:drive"    // the kernel saw I/O errors from the disk
	FaultFS       = "fault:fs"       // the filesystem reported an error (corruption)
	FaultReadOnly = "fault:readonly" // the filesystem remounted itself read-only
	FaultFull     = "fault:full"     // the filesystem is full
	FaultSpace    = "fault:space"    // space is available again
)

// faultState collects faults from QEMU's event monitor and the guest; the first drive fault
// ends the session (wait's select), later ones are only counted.
type faultState struct {
	once    sync.Once
	lost    chan string // the first drive fault
	mu      sync.Mutex
	driveN  int // drive errors seen (QMP events and guest lines)
	raised  bool
	full    bool
	fsError string
}

func (s *sup) driveLostCh() chan string {
	s.faults.once.Do(func() { s.faults.lost = make(chan string, 1) })
	return s.faults.lost
}

// onQMPEvent receives QEMU's events (from host/vm's monitor goroutine: must not block).
func (s *sup) onQMPEvent(e vm.QMPEvent) {
	b, ok := e.IOError()
	if !ok {
		return
	}
	if b.NoSpace {
		s.driveFault(b.String() + "; the disk holding the image is full: free space there")
		return
	}
	s.driveFault(b.String())
}

// driveFault records a drive error; the first one wakes wait.
func (s *sup) driveFault(what string) {
	s.faults.mu.Lock()
	s.faults.driveN++
	first := !s.faults.raised
	s.faults.raised = true
	s.faults.mu.Unlock()
	if !first {
		return
	}
	select {
	case s.driveLostCh() <- what:
	default:
	}
}

// guestFault handles the agent's fault events (the event itself is already in the log).
func (s *sup) guestFault(ev control.Event) {
	if !strings.HasPrefix(ev.Step, "fault:") || s.sess == nil {
		return
	}
	if s.state().State == session.StateDriveLost {
		return // the filesystem errors that follow are the drive's absence: the log has them
	}
	switch ev.Step {
	case FaultDrive:
		s.driveFault("guest kernel: " + ev.Message)
	case FaultFS:
		s.faults.mu.Lock()
		s.faults.fsError = ev.Message
		s.faults.mu.Unlock()
		s.progress("warning: %s", ev.Message)
		s.update(func(st *session.State) {
			st.Fault = "filesystem error: " + strings.ReplaceAll(ev.Message, "TARGET", st.Target)
			if !strings.Contains(st.Fault, "luksmount check") {
				st.Fault += "; stop, then run `luksmount check " + st.Target + "`"
			}
		})
	case FaultReadOnly:
		s.progress("warning: the filesystem remounted itself read-only after an error")
		s.update(func(st *session.State) {
			st.ReadOnly = true
			st.Fault = "the filesystem found an error and remounted itself read-only (writes now fail with EROFS); stop, then run `luksmount check --repair " + st.Target + "`"
		})
	case FaultFull:
		s.faults.mu.Lock()
		s.faults.full = true
		s.faults.mu.Unlock()
		s.update(func(st *session.State) { st.Fault = "filesystem full: " + ev.Message })
	case FaultSpace:
		s.faults.mu.Lock()
		was := s.faults.full
		s.faults.full = false
		s.faults.mu.Unlock()
		if was {
			s.update(func(st *session.State) {
				if strings.HasPrefix(st.Fault, "filesystem full") {
					st.Fault = ""
				}
			})
		}
	}
}

// driveLost ends a session whose drive stopped answering: say so (log and status), release the
// host mount with a deadline, stop the VM (killing it if the guest does not finish in time), then
// keep answering status until `luksmount stop`, so the user learns what happened.
func (s *sup) driveLost(ctx context.Context, what string) error {
	t0 := time.Now()
	target := s.state().Target
	msg := fmt.Sprintf("the drive stopped answering at %s (%s): it was unplugged, its dock dropped it, or it failed", t0.Format("15:04:05"), what)
	s.log.Note(timelog.Host, "ERROR: %s; stopping the session: nothing more can be written to it", msg)
	s.update(func(st *session.State) {
		st.State = session.StateDriveLost
		st.Fault = msg + "; plug it back in, run `luksmount stop " + target + "`, then mount it again (the journal replays what was written)"
	})
	if s.hostMounted {
		mp := s.state().Mountpoint
		t := s.log.Start("force unmount")
		uctx, cancel := context.WithTimeout(context.Background(), lostUnmountTimeout)
		err := s.deps.Host.Unmount(uctx, mp, true)
		cancel()
		t.Done(err, "%s (drive lost)", mp)
		s.hostMounted = err != nil
	}
	if m := s.machine(); m != nil {
		s.setVM(nil)
		t := s.log.Start("VM stop")
		sctx, cancel := context.WithTimeout(context.Background(), lostShutdownTimeout)
		// The Machine's Shutdown, so QEMU's exit is logged as requested, not "unexpected"; its
		// own escalation is far slower than this budget, so a deadline here kills QEMU.
		type result struct {
			r   *control.ShutdownReply
			err error
		}
		res := make(chan result, 1)
		go func() {
			r, err := m.Shutdown(sctx, true)
			res <- result{r, err}
		}()
		how := "agent shutdown"
		select {
		case <-m.Done():
		case <-time.After(lostShutdownTimeout + lostExitTimeout):
			m.Kill()
			<-m.Done()
			how += "; killed"
		}
		select {
		case x := <-res:
			if x.err == nil && x.r != nil {
				how = fmt.Sprintf("agent shutdown: synced=%v unmounted=%v closed=%v", x.r.Synced, x.r.Unmounted, x.r.Closed) + how[len("agent shutdown"):]
			}
		case <-time.After(time.Second):
		}
		cancel()
		t.Done(nil, "qemu pid %d gone (%s)", m.Pid(), how)
	}
	s.cleanMountpoint()
	s.faults.mu.Lock()
	n := s.faults.driveN
	s.faults.mu.Unlock()
	s.update(func(st *session.State) { st.VMPid = 0 })
	s.log.Note(timelog.Host, "drive lost: session released in %s (%d I/O error reports); waiting for `luksmount stop`",
		timelog.FormatDuration(time.Since(t0)), n)
	for {
		select {
		case req := <-s.stopReq:
			// Answered once the session has closed; the stop did what was asked, so it succeeds
			// even though the session itself ends with ErrDriveLost.
			s.answer = func(error) { req.answer(nil) }
			return fmt.Errorf("%w: %s", ErrDriveLost, msg)
		case <-ctx.Done():
			s.log.Note(timelog.Host, "session interrupted (%v)", context.Cause(ctx))
			return fmt.Errorf("%w: %s", ErrDriveLost, msg)
		}
	}
}
