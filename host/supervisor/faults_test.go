package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
)

func ioErrorEvent(op string) vm.QMPEvent {
	data, _ := json.Marshal(vm.BlockIOError{NodeName: "disk0", Operation: op, Action: "report", Reason: "Input/output error"})
	return vm.QMPEvent{Name: "BLOCK_IO_ERROR", Data: data, Time: time.Now()}
}

// TestDriveLostStopsVMAndTellsStatus: a BLOCK_IO_ERROR ends the session's VM at once (force
// unmount, agent shutdown), status and the log say the drive went away, and a later stop
// answers at once.
func TestDriveLostStopsVMAndTellsStatus(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	h := &fakeHost{canMount: true, unmounted: make(chan error)}
	e.deps.Host = h
	var onQMP func(vm.QMPEvent)
	e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) {
		onQMP = spec.OnQMPEvent
		return e.vm, nil
	}
	res, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	if onQMP == nil {
		t.Fatal("Boot got no QMP event handler")
	}
	t0 := time.Now()
	for i := 0; i < 100; i++ {
		onQMP(ioErrorEvent("write"))
	}
	var st session.State
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sts, _ := e.reg.List()
		if len(sts) == 1 && sts[0].State == session.StateDriveLost && sts[0].VMPid == 0 {
			st = sts[0]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.State != session.StateDriveLost || !strings.Contains(st.Fault, "stopped answering") || !strings.Contains(st.Fault, "luksmount stop") {
		t.Fatalf("status after the drive went away: %+v", st)
	}
	<-e.vm.Done()
	if took := time.Since(t0); took > 5*time.Second {
		t.Fatalf("VM stopped %s after the error", took)
	}
	if len(h.unmounts) != 1 || !h.unmounts[0] {
		t.Fatalf("host unmounts %v, want one forced", h.unmounts)
	}
	if len(e.vm.shutdowns) != 1 || !e.vm.shutdowns[0].Force {
		t.Fatalf("agent shutdowns %+v", e.vm.shutdowns)
	}
	if err := RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false); err != nil {
		t.Fatalf("stop after the drive went away: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrDriveLost) {
		t.Fatalf("session ended with %v", err)
	}
	log := e.log(t)
	for _, w := range []string{"ERROR: the drive stopped answering", "write error on disk0: Input/output error", "100 I/O error reports"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
	e.noSessions(t)
}

// TestGuestFaultsReachStatus: the agent's fault events set the status fault field (and read_only
// after a remount read-only); space coming back clears "full".
func TestGuestFaultsReachStatus(t *testing.T) {
	e := newEnv(t, "ext4.bin", "")
	var onEvent func(control.Event)
	e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) {
		onEvent = spec.OnEvent
		return e.vm, nil
	}
	res, done := e.start(t, &scriptUI{})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	get := func() session.State {
		sts, _ := e.reg.List()
		return sts[0]
	}
	onEvent(control.Event{Kind: control.EventLog, Step: FaultFull, Level: "warn", Message: "the filesystem is full (0 KiB free of 30 MiB)"})
	if st := get(); !strings.HasPrefix(st.Fault, "filesystem full") {
		t.Fatalf("fault after full: %q", st.Fault)
	}
	onEvent(control.Event{Kind: control.EventLog, Step: FaultSpace, Level: "info", Message: "space available again"})
	if st := get(); st.Fault != "" {
		t.Fatalf("fault after space is back: %q", st.Fault)
	}
	onEvent(control.Event{Kind: control.EventLog, Step: FaultReadOnly, Level: "error", Message: "kernel: EXT4-fs (dm-0): Remounting filesystem read-only"})
	if st := get(); !st.ReadOnly || !strings.Contains(st.Fault, "luksmount check --repair") {
		t.Fatalf("after remount-ro: %+v", st)
	}
	if !strings.Contains(e.log(t), "Remounting filesystem read-only") {
		t.Fatalf("log:\n%s", e.log(t))
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	<-done
}
