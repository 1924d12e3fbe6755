package agent

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/guest/nfsserver"
	"github.com/luksmount/luksmount/guest/timeline"
	"github.com/luksmount/luksmount/pkg/control"
)

// fakeSys plays cryptsetup, blkid, mount and power for the agent and logs what was done.
type fakeSys struct {
	mu         sync.Mutex
	log        []string
	pass       string
	busyTimes  int // unmount reports EBUSY this many times
	mounted    bool
	mapped     bool
	poweredOff chan struct{}
	secrets    []string
	nfsOpts    nfsserver.Options
}

var errBusy = errors.New("device or resource busy")

func (f *fakeSys) record(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *fakeSys) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	f.mu.Lock()
	f.secrets = append(f.secrets, string(c.Stdin))
	f.mu.Unlock()
	switch c.Name {
	case "blkid":
		dev := c.Args[len(c.Args)-1]
		switch dev {
		case "/dev/vda":
			return command.Result{Stdout: "TYPE=crypto_LUKS\nUUID=luks-uuid\nVERSION=2\n"}, nil
		case "/dev/vdb":
			return command.Result{Stdout: "TYPE=ext4\nUUID=plain-uuid\nLABEL=plain\n"}, nil
		case "/dev/mapper/luksmount":
			return command.Result{Stdout: "TYPE=ext4\nUUID=fs-uuid\nLABEL=data\n"}, nil
		}
		return command.Result{ExitCode: 2}, nil
	case "cryptsetup":
		switch c.Args[0] {
		case "open":
			if string(c.Stdin) != f.pass {
				return command.Result{ExitCode: 2, Stderr: "No key available with this passphrase.\n"}, nil
			}
			f.mapped = true
			f.record("cryptsetup open")
		case "close":
			f.mapped = false
			f.record("cryptsetup close")
		case "luksFormat":
			f.pass = string(c.Stdin)
			f.record("cryptsetup luksFormat")
		case "luksDump":
			return command.Result{Stdout: "Version: 2\nKeyslots:\n  0: luks2\n\tPBKDF:      argon2id\n\tMemory:     1048576\n"}, nil
		}
		return command.Result{}, nil
	case "mkfs.ext4":
		f.record("mkfs " + c.Args[len(c.Args)-1])
		return command.Result{}, nil
	case "e2fsck":
		f.record("e2fsck " + strings.Join(c.Args, " "))
		return command.Result{}, nil
	}
	return command.Result{ExitCode: 127}, nil
}

type fakeNFS struct {
	f      *fakeSys
	closed chan struct{}
	once   sync.Once
}

func (n *fakeNFS) Serve(l net.Listener) error {
	<-n.closed
	return nil
}

func (n *fakeNFS) Close() error {
	n.once.Do(func() { n.f.record("nfs close"); close(n.closed) })
	return nil
}

func newTestAgent(t *testing.T) (*Agent, *fakeSys) {
	t.Helper()
	f := &fakeSys{pass: "right", poweredOff: make(chan struct{})}
	deps := Deps{
		Run: f,
		Disks: func() ([]control.Disk, error) {
			return []control.Disk{{Device: "/dev/vda", Size: 1 << 30}, {Device: "/dev/vdb", Size: 1 << 20}}, nil
		},
		HasMagic:     func(dev string) bool { return dev == "/dev/vda" },
		SplitOptions: func(o []string) (fsops.Options, error) { return fsops.Options{ReadOnly: fsops.HasRO(o)}, nil },
		Mount: func(dev, target, fstype string, o fsops.Options) error {
			f.record("mount " + dev)
			f.mounted = true
			return nil
		},
		Unmount: func(target string, lazy bool) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.busyTimes > 0 && !lazy {
				f.busyTimes--
				f.log = append(f.log, "umount busy")
				return errBusy
			}
			f.log = append(f.log, "umount")
			f.mounted = false
			return nil
		},
		IsBusy:    func(err error) bool { return errors.Is(err, errBusy) },
		Sync:      func() { f.record("sync") },
		PowerOff:  func() error { f.record("poweroff"); close(f.poweredOff); return nil },
		RootOwner: func(string) (uint32, uint32, error) { return 1000, 1000, nil },
		NewNFS: func(o nfsserver.Options) (NFS, error) {
			f.nfsOpts = o
			return &fakeNFS{f: f, closed: make(chan struct{})}, nil
		},
		Listen:  func(addr string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		MemInfo: func() (int64, int64) { return 492 * 1024, 400 * 1024 },
		Kernel:  func() string { return "6.1.0-test" },
		Sleep:   func(time.Duration) {},
	}
	a := New(deps, timeline.New(nil))
	return a, f
}

// client connects a control client to the agent over a pipe.
func client(t *testing.T, a *Agent) *control.Client {
	t.Helper()
	c1, c2 := net.Pipe()
	go a.Server().ServeConn(context.Background(), c2)
	c := control.NewClient(c1, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

func wantCode(t *testing.T, err error, code control.Code, what string) {
	t.Helper()
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("%s: error = %v; want %s", what, err, code)
	}
}

func TestLifecycle(t *testing.T) {
	a, f := newTestAgent(t)
	c := client(t, a)
	ctx := context.Background()

	h, err := c.Hello(ctx, "test")
	if err != nil || h.State != control.StateReady || h.Kernel != "6.1.0-test" {
		t.Fatalf("Hello = %+v, %v", h, err)
	}
	_, err = c.Serve(ctx, control.ServeRequest{})
	wantCode(t, err, control.CodeBadState, "serve before mount")
	_, err = c.Mount(ctx, control.MountRequest{Device: "/dev/vda"})
	wantCode(t, err, control.CodeBadState, "mount of a LUKS device before unlock")

	_, err = c.Unlock(ctx, control.UnlockRequest{}, []byte("wrong"))
	wantCode(t, err, control.CodeWrongPassphrase, "wrong passphrase")
	if st, _ := c.Status(ctx); st.State != control.StateReady || st.MemTotalKiB != 492*1024 {
		t.Fatalf("after a wrong passphrase Status = %+v; want ready", st)
	}
	_, err = c.Unlock(ctx, control.UnlockRequest{Device: "/dev/vdb"}, []byte("right"))
	wantCode(t, err, control.CodeNotEncrypted, "unlock of a plain disk")
	a.deps.Disks = func() ([]control.Disk, error) { return []control.Disk{{Device: "/dev/vdb"}}, nil }
	_, err = c.Unlock(ctx, control.UnlockRequest{}, []byte("right"))
	wantCode(t, err, control.CodeNotEncrypted, "unlock with no LUKS disk")
	a.deps.Disks = func() ([]control.Disk, error) { return []control.Disk{{Device: "/dev/vda"}, {Device: "/dev/vdb"}}, nil }
	_, err = c.Unlock(ctx, control.UnlockRequest{Device: "/dev/vdz"}, []byte("right"))
	wantCode(t, err, control.CodeNotFound, "unlock of a missing disk")

	u, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("right"))
	if err != nil || u.Mapper != "/dev/mapper/luksmount" {
		t.Fatalf("Unlock = %+v, %v", u, err)
	}
	_, err = c.Unlock(ctx, control.UnlockRequest{}, []byte("right"))
	wantCode(t, err, control.CodeBadState, "second unlock")
	_, err = c.Format(ctx, control.FormatRequest{Type: "luks2"}, []byte("x"))
	wantCode(t, err, control.CodeBadState, "format while unlocked")

	m, err := c.Mount(ctx, control.MountRequest{Options: []string{"noatime"}})
	if err != nil || m.FSType != "ext4" || m.Label != "data" || m.RootUID != 1000 || m.Mountpoint != fsops.Mountpoint {
		t.Fatalf("Mount = %+v, %v", m, err)
	}
	_, err = c.Check(ctx, control.CheckRequest{})
	wantCode(t, err, control.CodeBadState, "check while mounted")

	_, err = c.Serve(ctx, control.ServeRequest{ClientUID: 501, ClientGID: 20, Owner: "bad"})
	wantCode(t, err, control.CodeInvalidArgument, "bad owner")
	s, err := c.Serve(ctx, control.ServeRequest{ClientUID: 501, ClientGID: 20, Owner: "1000:1000"})
	if err != nil || s.Address != "192.168.127.2:2049" {
		t.Fatalf("Serve = %+v, %v", s, err)
	}
	if o := f.nfsOpts; o.Root != fsops.Mountpoint || o.ClientUID != 501 || o.DriveUID != 1000 || o.OwnerFromRoot || o.PassThroughIDs {
		t.Fatalf("nfs options = %+v", o)
	}
	if st, _ := c.Status(ctx); st.State != control.StateServing || st.ServeAddress == "" {
		t.Fatalf("Status = %+v; want serving", st)
	}

	f.mu.Lock()
	f.log = nil
	f.busyTimes = 2
	f.mu.Unlock()
	rep, err := c.Shutdown(ctx, control.ShutdownRequest{})
	if err != nil || !rep.Synced || !rep.Unmounted || !rep.Closed {
		t.Fatalf("Shutdown = %+v, %v", rep, err)
	}
	select {
	case <-f.poweredOff:
	case <-time.After(5 * time.Second):
		t.Fatal("no power-off after the shutdown reply")
	}
	f.mu.Lock()
	got := strings.Join(f.log, ", ")
	f.mu.Unlock()
	want := "nfs close, sync, umount busy, umount busy, umount, cryptsetup close, poweroff"
	if got != want {
		t.Fatalf("shutdown order:\n got %s\nwant %s", got, want)
	}
	for _, s := range f.secrets {
		if s != "" && s != "right" && s != "wrong" && s != "x" {
			t.Fatalf("unexpected stdin %q", s)
		}
	}
}

func TestShutdownStaysUpWhenBusyUnlessForced(t *testing.T) {
	a, f := newTestAgent(t)
	c := client(t, a)
	ctx := context.Background()
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
		t.Fatal(err)
	}
	f.busyTimes = 100
	_, err := c.Shutdown(ctx, control.ShutdownRequest{})
	wantCode(t, err, control.CodeDeviceBusy, "shutdown of a busy filesystem")
	if !f.mounted || !f.mapped || a.State() != control.StateMounted {
		t.Fatalf("busy shutdown left mounted=%v mapped=%v state=%s; want everything still open", f.mounted, f.mapped, a.State())
	}
	select {
	case <-f.poweredOff:
		t.Fatal("powered off with the mapping open")
	case <-time.After(50 * time.Millisecond):
	}
	rep, err := c.Shutdown(ctx, control.ShutdownRequest{Force: true})
	if err != nil || !rep.Unmounted || !rep.Closed {
		t.Fatalf("forced Shutdown = %+v, %v", rep, err)
	}
	<-f.poweredOff
}

func TestNoPowerOffReturnsToReady(t *testing.T) {
	a, f := newTestAgent(t)
	c := client(t, a)
	ctx := context.Background()
	if _, err := c.Mount(ctx, control.MountRequest{Device: "/dev/vdb", Options: []string{"ro"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true}); err != nil {
		t.Fatal(err)
	}
	if a.State() != control.StateReady || f.mounted {
		t.Fatalf("state %s mounted=%v; want ready and unmounted", a.State(), f.mounted)
	}
	rep, err := c.Check(ctx, control.CheckRequest{Device: "/dev/vdb"})
	if err != nil || !rep.Clean {
		t.Fatalf("Check = %+v, %v", rep, err)
	}
	select {
	case <-f.poweredOff:
		t.Fatal("powered off despite NoPowerOff")
	default:
	}
}

func TestFormatThenUnlock(t *testing.T) {
	a, f := newTestAgent(t)
	c := client(t, a)
	ctx := context.Background()
	_, err := c.Format(ctx, control.FormatRequest{Type: "luks1", PBKDF: "argon2id"}, []byte("new"))
	wantCode(t, err, control.CodeInvalidArgument, "luks1 with argon2")
	rep, err := c.Format(ctx, control.FormatRequest{Type: "luks2", Label: "data"}, []byte("new"))
	if err != nil || rep.LUKSUUID != "luks-uuid" || rep.FSUUID != "fs-uuid" {
		t.Fatalf("Format = %+v, %v", rep, err)
	}
	got := strings.Join(f.log, ", ")
	if got != "cryptsetup luksFormat, cryptsetup open, mkfs /dev/mapper/luksmount, sync, cryptsetup close" {
		t.Fatalf("format steps = %s", got)
	}
	if a.State() != control.StateReady || f.mapped {
		t.Fatal("format left the mapping open")
	}
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("new")); err != nil {
		t.Fatalf("unlock with the new passphrase: %v", err)
	}
}

func TestProbe(t *testing.T) {
	a, _ := newTestAgent(t)
	c := client(t, a)
	rep, err := c.Probe(context.Background())
	if err != nil || len(rep.Disks) != 2 {
		t.Fatalf("Probe = %+v, %v", rep, err)
	}
	d := rep.Disks[0]
	if d.Type != "crypto_LUKS" || d.LUKS == nil || d.LUKS.Version != 2 || d.LUKS.MaxMemoryKiB != 1<<20 || d.LUKS.KDF != "argon2id" {
		t.Fatalf("vda = %+v (luks %+v)", d, d.LUKS)
	}
	if rep.Disks[1].Type != "ext4" || rep.Disks[1].Label != "plain" {
		t.Fatalf("vdb = %+v", rep.Disks[1])
	}
}

func TestServeRestartsAfterFailure(t *testing.T) {
	a, f := newTestAgent(t)
	starts := make(chan struct{}, 4)
	a.deps.NewNFS = func(o nfsserver.Options) (NFS, error) {
		starts <- struct{}{}
		if len(starts) == 1 {
			return panicky{}, nil
		}
		return &fakeNFS{f: f, closed: make(chan struct{})}, nil
	}
	c := client(t, a)
	ctx := context.Background()
	if _, err := c.Mount(ctx, control.MountRequest{Device: "/dev/vdb"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Serve(ctx, control.ServeRequest{Owner: "none"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(3 * time.Second)
	for len(starts) < 2 {
		select {
		case <-deadline:
			t.Fatal("NFS server not restarted after a panic")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := c.Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true}); err != nil {
		t.Fatal(err)
	}
}

type panicky struct{}

func (panicky) Serve(net.Listener) error { panic("boom") }
func (panicky) Close() error             { return nil }

func TestSessionsOrphaned(t *testing.T) {
	now := time.Unix(100, 0)
	s := &Sessions{now: func() time.Time { return now }}
	if s.Orphaned(10 * time.Second) {
		t.Fatal("orphaned before any host connected")
	}
	s.begin()
	s.end()
	now = now.Add(9 * time.Second)
	if s.Orphaned(10 * time.Second) {
		t.Fatal("orphaned after 9s")
	}
	s.begin()
	now = now.Add(20 * time.Second)
	if s.Orphaned(10 * time.Second) {
		t.Fatal("orphaned while a host is connected")
	}
	s.end()
	now = now.Add(10 * time.Second)
	if !s.Orphaned(10 * time.Second) {
		t.Fatal("not orphaned 10s after the host left")
	}
}

func TestSessionsNeverConnected(t *testing.T) {
	now := time.Unix(100, 0)
	s := &Sessions{born: now, now: func() time.Time { return now }}
	now = now.Add(NeverConnectedTimeout - time.Second)
	if s.Orphaned(10 * time.Second) {
		t.Fatal("orphaned before the first host had its chance")
	}
	now = now.Add(time.Second)
	if !s.Orphaned(10 * time.Second) {
		t.Fatal("a VM whose host never connected is not orphaned after NeverConnectedTimeout")
	}
	s.begin()
	if s.Orphaned(10 * time.Second) {
		t.Fatal("orphaned while a host is connected")
	}
}

func TestParseMeminfo(t *testing.T) {
	tot, av := ParseMeminfo(strings.NewReader("MemTotal:         503868 kB\nMemFree:          470000 kB\nMemAvailable:     455512 kB\n"))
	if tot != 503868 || av != 455512 {
		t.Fatalf("ParseMeminfo = %d, %d", tot, av)
	}
}
