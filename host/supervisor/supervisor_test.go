package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/pkg/control"
)

// fakeVM is a Machine whose agent is an in-process control.Server.
type fakeVM struct {
	client   *control.Client
	done     chan struct{}
	doneOnce sync.Once
	exitErr  error

	mu        sync.Mutex
	secrets   []string
	shutdowns []control.ShutdownRequest
	killed    bool
	right     string
	unlockErr *control.Error // returned for every unlock when set
}

func (f *fakeVM) Control() *control.Client { return f.client }
func (f *fakeVM) NFSAddr() string          { return "127.0.0.1:40123" }
func (f *fakeVM) Pid() int                 { return 4242 }
func (f *fakeVM) Accel() string            { return "tcg" }
func (f *fakeVM) Done() <-chan struct{}    { return f.done }
func (f *fakeVM) Err() error               { return f.exitErr }
func (f *fakeVM) Kill() error {
	f.mu.Lock()
	f.killed = true
	f.mu.Unlock()
	f.die(errors.New("killed"))
	return nil
}

// Shutdown is vm.VM's: the agent's shutdown, then QEMU's exit.
func (f *fakeVM) Shutdown(ctx context.Context, force bool) (*control.ShutdownReply, error) {
	select {
	case <-f.done:
		return nil, f.exitErr
	default:
	}
	r, err := f.client.Shutdown(ctx, control.ShutdownRequest{Force: force})
	if err != nil {
		return nil, err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return r, ctx.Err()
	}
	return r, nil
}

func (f *fakeVM) die(err error) {
	f.doneOnce.Do(func() {
		f.exitErr = err
		f.client.Close()
		close(f.done)
	})
}

func (f *fakeVM) handle(ctx context.Context, req *control.Request) (any, error) {
	switch req.Op {
	case control.OpHello:
		return control.HelloReply{AgentVersion: "test", ProtocolVersion: control.ProtocolVersion, Kernel: "6.1-test",
			Timeline: []control.Event{{Kind: control.EventStep, Time: 0.8, Step: "init", Duration: 0.1, Message: "agent up"}}}, nil
	case control.OpUnlock:
		f.mu.Lock()
		defer f.mu.Unlock()
		f.secrets = append(f.secrets, string(req.Secret))
		if f.unlockErr != nil {
			return nil, f.unlockErr
		}
		if string(req.Secret) != f.right {
			return nil, control.Errorf(control.CodeWrongPassphrase, "no key available with this passphrase")
		}
		return control.UnlockReply{Mapper: "/dev/mapper/luksmount"}, nil
	case control.OpMount:
		return control.MountReply{Mountpoint: "/mnt/data", FSType: "ext4", Label: "backup"}, nil
	case control.OpServe:
		return control.ServeReply{Address: "192.168.127.2:2049", Export: "/"}, nil
	case control.OpStatus:
		return control.StatusReply{State: control.StateServing}, nil
	case control.OpShutdown:
		var r control.ShutdownRequest
		req.Decode(&r)
		f.mu.Lock()
		f.shutdowns = append(f.shutdowns, r)
		f.mu.Unlock()
		go func() { time.Sleep(20 * time.Millisecond); f.die(nil) }()
		return control.ShutdownReply{Synced: true, Unmounted: true, Closed: true}, nil
	}
	return nil, control.Errorf(control.CodeUnsupportedOp, "unsupported")
}

func newFakeVM(right string) *fakeVM {
	f := &fakeVM{done: make(chan struct{}), right: right}
	a, b := net.Pipe()
	srv := &control.Server{Handler: f.handle}
	go srv.ServeConn(context.Background(), a)
	f.client = control.NewClient(b, nil)
	return f
}

// scriptUI answers passphrase requests from a list and records every buffer it handed out.
type scriptUI struct {
	mu      sync.Mutex
	answers []string
	handed  [][]byte
	lines   []string
	asked   []int
}

func (u *scriptUI) Progress(line string) {
	u.mu.Lock()
	u.lines = append(u.lines, line)
	u.mu.Unlock()
}

func (u *scriptUI) Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.asked = append(u.asked, attempt)
	if len(u.answers) == 0 {
		return nil, passphrase.ErrNoInput
	}
	b := []byte(u.answers[0])
	u.answers = u.answers[1:]
	u.handed = append(u.handed, b)
	return b, nil
}

func (u *scriptUI) allWiped(t *testing.T) {
	t.Helper()
	for i, b := range u.handed {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Errorf("passphrase buffer %d not wiped: %q", i, b)
		}
	}
}

// fakeHost records host mount operations; unmounted fires its watch.
type fakeHost struct {
	mu        sync.Mutex
	canMount  bool
	mounted   string
	unmounts  []bool // force flags
	busy      bool
	unmounted chan error
	removed   bool
	forced    int // ForceUnmount calls (the VM is dead: no plain umount)
}

func (h *fakeHost) CheckNotMounted(*blockdev.Device) error { return nil }
func (h *fakeHost) CanMount() (bool, string)               { return h.canMount, "no NFS client in this kernel" }
func (h *fakeHost) PrepareMountpoint(p, label string, uid, gid int) (string, func(), error) {
	return "/Volumes/" + label, func() { h.mu.Lock(); h.removed = true; h.mu.Unlock() }, nil
}
func (h *fakeHost) Mount(ctx context.Context, addr, export, mp string, extra []string, uid, gid int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mounted = mp
	return nil
}
func (h *fakeHost) Unmount(ctx context.Context, mp string, force bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unmounts = append(h.unmounts, force)
	if h.busy && !force {
		return errors.New("resource busy")
	}
	h.mounted = ""
	return nil
}
func (h *fakeHost) ForceUnmount(ctx context.Context, mp string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unmounts = append(h.unmounts, true)
	h.forced++
	h.mounted = ""
	return nil
}
func (h *fakeHost) WatchUnmount(ctx context.Context, mp string) <-chan error { return h.unmounted }
func (h *fakeHost) ServeOnlyHint(addr, export string) string {
	return "mount -t nfs -o port=40123 127.0.0.1:" + export + " /mnt"
}

type env struct {
	deps Deps
	reg  *session.Registry
	vm   *fakeVM
	logs string
	opts Options
}

func newEnv(t *testing.T, fixture, right string) *env {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "t.img")
	hdr, err := os.ReadFile(filepath.Join("..", "..", "pkg", "luksheader", "testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20)
	copy(data, hdr)
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{reg: &session.Registry{Dirs: []string{filepath.Join(dir, "run")}, UID: -1, GID: -1}, logs: filepath.Join(dir, "logs")}
	e.vm = newFakeVM(right)
	e.deps = Deps{
		Open: func(target string, ro bool) (*blockdev.Device, error) {
			return blockdev.Open(target, blockdev.Options{ReadOnly: ro})
		},
		Boot:     func(ctx context.Context, spec BootSpec) (Machine, error) { return e.vm, nil },
		Registry: e.reg,
		LogPath:  func(id string) string { return filepath.Join(e.logs, id+".log") },
	}
	e.opts = Options{Target: img, UID: 1000, GID: 1000}
	return e
}

// start runs the supervisor in the background and returns when it is ready (or failed).
func (e *env) start(t *testing.T, ui UI) (ready *Result, done chan error) {
	t.Helper()
	done = make(chan error, 1)
	readyCh := make(chan Result, 1)
	go func() { done <- Run(context.Background(), e.opts, e.deps, ui, func(r Result) { readyCh <- r }) }()
	select {
	case r := <-readyCh:
		return &r, done
	case err := <-done:
		done <- err
		return nil, done
	case <-time.After(10 * time.Second):
		t.Fatal("supervisor neither ready nor failed")
	}
	return nil, nil
}

func (e *env) log(t *testing.T) string {
	ents, _ := os.ReadDir(e.logs)
	if len(ents) != 1 {
		t.Fatalf("want one log file, have %d", len(ents))
	}
	data, _ := os.ReadFile(filepath.Join(e.logs, ents[0].Name()))
	return string(data)
}

func (e *env) noSessions(t *testing.T) {
	t.Helper()
	if l, _ := e.reg.List(); len(l) != 0 {
		t.Fatalf("sessions left: %+v", l)
	}
	ents, _ := os.ReadDir(e.reg.Dirs[0])
	if len(ents) != 0 {
		t.Fatalf("runtime dir not empty: %v", ents)
	}
}

func TestServeOnlyThenStop(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	ui := &scriptUI{answers: []string{"right"}}
	res, done := e.start(t, ui)
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	st := res.State
	if st.State != session.StateServing || st.NFSAddress != "127.0.0.1:40123" || st.Export != "/" ||
		st.FSType != "ext4" || st.Label != "backup" || !st.Encrypted || st.VMPid != 4242 || st.MemoryMiB != 256 {
		t.Fatalf("state %+v", st)
	}
	listed, err := e.reg.Find(e.opts.Target)
	if err != nil || listed.State != session.StateServing {
		t.Fatalf("registry: %+v, %v", listed, err)
	}
	live, agent, err := LiveStatus(session.SocketPath(e.reg.Dirs[0], st.ID))
	if err != nil || live.NFSAddress != st.NFSAddress || agent == nil || agent.State != control.StateServing {
		t.Fatalf("live status %+v %+v %v", live, agent, err)
	}
	if err := RequestStop(session.SocketPath(e.reg.Dirs[0], st.ID), false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(e.vm.shutdowns) != 1 || e.vm.shutdowns[0].Force || e.vm.killed {
		t.Fatalf("shutdowns %+v killed %v", e.vm.shutdowns, e.vm.killed)
	}
	e.noSessions(t)
	ui.allWiped(t)
	log := e.log(t)
	for _, want := range []string{"=== ", "host   read header", "host   boot VM", "guest  init", "host   unlock",
		"attempt 1", "guest mount", "guest shutdown", "synced=true unmounted=true closed=true", "session ended"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "right") {
		t.Fatalf("passphrase in the log:\n%s", log)
	}
}

func TestWrongPassphraseThreeTimes(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	ui := &scriptUI{answers: []string{"a", "b", "c", "right"}}
	res, done := e.start(t, ui)
	if res != nil {
		t.Fatal("ready after wrong passphrases")
	}
	err := <-done
	var pe *PassphraseError
	if !errors.As(err, &pe) || pe.Attempts != 3 || !errors.Is(err, control.ErrWrongPassphrase) {
		t.Fatalf("err = %v", err)
	}
	if got := err.Error(); !strings.Contains(got, "(3 attempts); nothing was changed") {
		t.Fatalf("message %q", got)
	}
	if strings.Join(e.vm.secrets, ",") != "a,b,c" {
		t.Fatalf("secrets tried: %v", e.vm.secrets)
	}
	if len(e.vm.shutdowns) != 1 {
		t.Fatalf("VM not shut down: %+v", e.vm.shutdowns)
	}
	<-e.vm.Done()
	ui.allWiped(t)
	e.noSessions(t)
}

func TestWrongThenRight(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	ui := &scriptUI{answers: []string{"wrong", "right"}}
	res, done := e.start(t, ui)
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	if fmt.Sprint(ui.asked) != "[1 2]" {
		t.Fatalf("asked attempts %v", ui.asked)
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ui.allWiped(t)
}

// Piped stdin ends after one wrong line: stop there, not at three.
func TestWrongPassphraseThenEOF(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	ui := &scriptUI{answers: []string{"wrong"}}
	_, done := e.start(t, ui)
	var pe *PassphraseError
	if err := <-done; !errors.As(err, &pe) || pe.Attempts != 1 {
		t.Fatalf("err = %v", err)
	}
	e.noSessions(t)
}

func TestNoPassphraseAtAll(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	_, done := e.start(t, &scriptUI{})
	if err := <-done; !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("err = %v", err)
	}
	<-e.vm.Done() // the VM booted in parallel is not left behind
	e.noSessions(t)
}

func TestOutOfMemoryMessage(t *testing.T) {
	e := newEnv(t, "luks2-argon2i.bin", "right") // 64 MiB argon2i
	e.vm.unlockErr = control.Errorf(control.CodeOutOfMemory, "cannot allocate memory")
	e.opts.MemoryMiB = 128
	_, done := e.start(t, &scriptUI{answers: []string{"right"}})
	err := <-done
	var me *MemoryError
	if !errors.As(err, &me) || !errors.Is(err, control.ErrOutOfMemory) {
		t.Fatalf("err = %v", err)
	}
	if got := err.Error(); !strings.Contains(got, "needs 64 MiB") || !strings.Contains(got, "retry with --memory 320") {
		t.Fatalf("message %q", got)
	}
}

func TestKeyFile(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "key-content\n")
	kf := filepath.Join(t.TempDir(), "key")
	os.WriteFile(kf, []byte("key-content\n"), 0o600)
	e.opts.KeyFile = kf
	ui := &scriptUI{}
	res, done := e.start(t, ui)
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	if len(ui.asked) != 0 {
		t.Fatal("asked for a passphrase despite --key-file")
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	<-done
}

func TestUnencryptedNeedsNoPassphrase(t *testing.T) {
	e := newEnv(t, "ext4.bin", "")
	ui := &scriptUI{}
	res, done := e.start(t, ui)
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	if len(ui.asked) != 0 || res.State.Encrypted || res.State.CPUs != 1 {
		t.Fatalf("asked %v state %+v", ui.asked, res.State)
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	<-done
}

func TestHostMountUnmountWatch(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	h := &fakeHost{canMount: true, unmounted: make(chan error, 1)}
	e.deps.Host = h
	res, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	if res.State.State != session.StateMounted || res.State.Mountpoint != "/Volumes/backup" || h.mounted != "/Volumes/backup" {
		t.Fatalf("state %+v host %+v", res.State, h)
	}
	h.unmounted <- nil // the user ejected it
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(e.vm.shutdowns) != 1 || !h.removed {
		t.Fatalf("shutdowns %v removed %v", e.vm.shutdowns, h.removed)
	}
	e.noSessions(t)
}

func TestStopRefusedWhileBusyThenForced(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	h := &fakeHost{canMount: true, busy: true, unmounted: make(chan error)}
	e.deps.Host = h
	res, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	sock := session.SocketPath(e.reg.Dirs[0], res.State.ID)
	if err := RequestStop(sock, false); !errors.Is(err, ErrMountBusy) {
		t.Fatalf("stop of a busy mount: %v", err)
	}
	if len(e.vm.shutdowns) != 0 {
		t.Fatal("guest shut down although the host mount is busy")
	}
	if err := RequestStop(sock, true); err != nil {
		t.Fatalf("forced stop: %v", err)
	}
	<-done
	if len(e.vm.shutdowns) != 1 || !e.vm.shutdowns[0].Force {
		t.Fatalf("shutdowns %+v", e.vm.shutdowns)
	}
	e.noSessions(t)
}

func TestNoNFSClientServesOnly(t *testing.T) {
	e := newEnv(t, "ext4.bin", "")
	e.deps.Host = &fakeHost{canMount: false}
	res, done := e.start(t, &scriptUI{})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	if res.State.State != session.StateServing || !strings.Contains(res.Notice, "no NFS client") ||
		!strings.Contains(res.Hint, "port=40123") {
		t.Fatalf("result %+v", res)
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	<-done
}

func TestVMDeathForceUnmounts(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	h := &fakeHost{canMount: true, unmounted: make(chan error)}
	e.deps.Host = h
	res, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	e.vm.die(errors.New("signal: killed"))
	err := <-done
	if !errors.Is(err, ErrVMDied) {
		t.Fatalf("err = %v", err)
	}
	if len(h.unmounts) != 1 || h.forced != 1 {
		t.Fatalf("unmounts %v (ForceUnmount %d), want only one ForceUnmount: a plain umount waits on the dead server", h.unmounts, h.forced)
	}
	if !strings.Contains(e.log(t), "exited unexpectedly: signal: killed") {
		t.Fatalf("log:\n%s", e.log(t))
	}
	e.noSessions(t)
}

func TestSecondSessionSameTargetRefused(t *testing.T) {
	e := newEnv(t, "ext4.bin", "")
	res, done := e.start(t, &scriptUI{})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	err := Run(context.Background(), e.opts, e.deps, &scriptUI{}, func(Result) { t.Error("second session ready") })
	if !errors.Is(err, blockdev.ErrBusy) && !errors.Is(err, session.ErrBusy) {
		t.Fatalf("second Run: %v", err)
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	<-done
}

func TestCorruptHeader(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, "luks2-argon2id.bin", "right")
	// Damage both header copies' JSON area (checksums then fail).
	data, _ := os.ReadFile(e.opts.Target)
	for i := 4096; i < 32768; i++ {
		data[i] ^= 0x5a
	}
	os.WriteFile(e.opts.Target, data, 0o600)
	_ = dir
	_, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if err := <-done; err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("err = %v", err)
	}
	e.noSessions(t)
}
