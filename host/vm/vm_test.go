package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/control"
)

// The test binary doubles as a fake QEMU (FAKE_QEMU=<mode>): it reads the paths QEMU would from
// the rendered arguments and plays a guest, so the VM lifecycle is tested without booting one.
func TestMain(m *testing.M) {
	if mode := os.Getenv("FAKE_QEMU"); mode != "" {
		os.Exit(fakeQEMU(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func option(args []string, flag, prefix, key string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] != flag || !strings.HasPrefix(args[i+1], prefix) {
			continue
		}
		for _, kv := range strings.Split(args[i+1], ",") {
			if v, ok := strings.CutPrefix(kv, key+"="); ok {
				return v
			}
		}
	}
	return ""
}

func fakeQEMU(mode string, args []string) int {
	console := option(args, "-chardev", "file,id=console", "path")
	ctlPath := option(args, "-chardev", "socket,id=ctl", "path")
	netPath := option(args, "-netdev", "stream", "addr.path")
	qmpPath := option(args, "-chardev", "socket,id=qmp", "path")
	say := func(s string) {
		f, _ := os.OpenFile(console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		f.WriteString(s + "\n")
		f.Close()
	}
	if mode == "badargs" {
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -device virtio-blk-pci: Failed to get \"write\" lock")
		return 1
	}
	if mode == "silent" { // never connects
		time.Sleep(time.Minute)
		return 0
	}
	qmpLn, err := net.Listen("unix", qmpPath)
	if err != nil {
		return 3
	}
	exit := make(chan int, 1)
	go func() { // QMP: obeys quit; system_powerdown only in mode acpi
		for {
			c, err := qmpLn.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, `{"QMP": {"version": {}}}`)
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					break
				}
				line := string(buf[:n])
				fmt.Fprintln(c, `{"return": {}}`)
				if strings.Contains(line, `"quit"`) && mode != "stubborn" {
					exit <- 0
				}
				if strings.Contains(line, "system_powerdown") && mode == "acpi" {
					say("reboot: Power down")
					exit <- 0
				}
			}
			c.Close()
		}
	}()
	netc, err := net.Dial("unix", netPath)
	if err != nil {
		return 4
	}
	defer netc.Close()
	ctl, err := net.Dial("unix", ctlPath)
	if err != nil {
		return 5
	}
	say("Linux version 6.1.0-fake")
	switch mode {
	case "panic":
		time.Sleep(100 * time.Millisecond)
		say("Kernel panic - not syncing: VFS: Unable to mount root fs")
		return 0
	case "poweroff":
		time.Sleep(100 * time.Millisecond)
		say("reboot: Power down")
		return 0
	case "exit2":
		time.Sleep(100 * time.Millisecond)
		say("agent: fatal")
		return 2
	}
	srv := &control.Server{Handler: func(ctx context.Context, req *control.Request) (any, error) {
		if mode != "agent" && mode != "nopoweroff" {
			<-ctx.Done() // a hung agent
			return nil, ctx.Err()
		}
		switch req.Op {
		case control.OpHello:
			return control.HelloReply{AgentVersion: "fake", ProtocolVersion: control.ProtocolVersion, Kernel: "6.1.0-fake", State: control.StateReady}, nil
		case control.OpShutdown:
			if mode == "nopoweroff" { // all closed, then the guest kernel hangs before power-off
				return control.ShutdownReply{Synced: true, Unmounted: true, Closed: true}, nil
			}
			req.AfterReply(func() {
				say("reboot: Power down")
				exit <- 0
			})
			return control.ShutdownReply{Synced: true, Unmounted: true, Closed: true}, nil
		}
		return nil, control.Errorf(control.CodeUnsupportedOp, "fake agent: %s", req.Op)
	}}
	go srv.ServeConn(context.Background(), ctl)
	select {
	case code := <-exit:
		return code
	case <-time.After(time.Minute):
		return 9
	}
}

func spec(t *testing.T, mode string) Spec {
	t.Helper()
	t.Setenv("FAKE_QEMU", mode)
	t.Setenv("GORACE", "atexit_sleep_ms=0") // under -race the fake would linger 1 s at exit
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "vmt") // short: socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	disk := filepath.Join(base, "disk.img")
	os.WriteFile(disk, nil, 0o600)
	return Spec{
		Config: qemu.Config{
			Arch: qemu.ArchAMD64, Accel: qemu.AccelTCG, HostOS: "linux", MemoryMiB: 256,
			Kernel: "/nonexistent/vmlinuz", Initrd: "/nonexistent/initramfs.cpio.lz4",
			Disks: []qemu.Disk{{Path: disk}},
		},
		RuntimeDir:     filepath.Join(base, "run"),
		QEMU:           exe,
		ConnectTimeout: 5 * time.Second,
		Lifetime:       time.Minute,
		Logf:           t.Logf,
	}
}

func TestLifecycle(t *testing.T) {
	s := spec(t, "agent")
	v, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(s.RuntimeDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir: %v, %v", st, err)
	}
	if !strings.HasPrefix(v.NFSAddr(), "127.0.0.1:") || v.Pid() <= 0 || v.Accel() != "tcg" {
		t.Errorf("NFSAddr %s, Pid %d, Accel %s", v.NFSAddr(), v.Pid(), v.Accel())
	}
	select {
	case <-v.Network().Attached():
	case <-time.After(5 * time.Second):
		t.Error("QEMU's network never attached")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := v.Ready(ctx, "test")
	if err != nil || h.AgentVersion != "fake" {
		t.Fatalf("Ready = %+v, %v", h, err)
	}
	if !strings.Contains(v.Console(), "Linux version 6.1.0-fake") {
		t.Errorf("Console() = %q", v.Console())
	}
	r, err := v.Shutdown(ctx, false)
	if err != nil || r == nil || !r.Synced {
		t.Fatalf("Shutdown = %+v, %v", r, err)
	}
	if err := v.Wait(); err != nil {
		t.Errorf("Wait after Shutdown = %v", err)
	}
	if _, err := os.Stat(s.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime dir still there: %v", err)
	}
	if c, err := net.Dial("tcp", v.NFSAddr()); err == nil {
		c.Close()
		t.Error("NFS forward still listening after exit")
	}
	if !strings.Contains(v.Console(), "Power down") {
		t.Errorf("Console() after exit = %q", v.Console())
	}
}

func TestStartFailures(t *testing.T) {
	t.Run("qemu rejects its arguments", func(t *testing.T) {
		s := spec(t, "badargs")
		_, err := Start(context.Background(), s)
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), `Failed to get "write" lock`) {
			t.Errorf("error = %v", err)
		}
		if _, err := os.Stat(s.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("runtime dir left behind: %v", err)
		}
	})
	t.Run("qemu never connects", func(t *testing.T) {
		s := spec(t, "silent")
		s.ConnectTimeout = 500 * time.Millisecond
		t0 := time.Now()
		_, err := Start(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), "did not connect the control channel within 500ms") {
			t.Errorf("error = %v", err)
		}
		if time.Since(t0) > 10*time.Second {
			t.Errorf("Start took %s", time.Since(t0))
		}
		if _, err := os.Stat(s.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("runtime dir left behind: %v", err)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		s := spec(t, "agent")
		s.Config.Kernel = ""
		if _, err := Start(context.Background(), s); !errors.Is(err, qemu.ErrInvalidConfig) {
			t.Errorf("error = %v", err)
		}
		if _, err := os.Stat(s.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("runtime dir left behind: %v", err)
		}
	})
	t.Run("shared runtime dir", func(t *testing.T) {
		s := spec(t, "agent")
		os.Mkdir(s.RuntimeDir, 0o755)
		if _, err := Start(context.Background(), s); err == nil || !strings.Contains(err.Error(), "mode 0700") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("missing qemu", func(t *testing.T) {
		if _, err := FindQEMU("qemu-system-nonexistent"); !errors.Is(err, ErrQEMUNotFound) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestDiesDuringBoot(t *testing.T) {
	for _, tt := range []struct{ mode, want, errWant string }{
		{"panic", "Kernel panic - not syncing: VFS: Unable to mount root fs", "the guest kernel panicked"},
		{"poweroff", "reboot: Power down", "powered off by itself"},
		{"exit2", "agent: fatal", "exit status 2"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			s := spec(t, tt.mode)
			s.ConsoleLog = filepath.Join(filepath.Dir(s.RuntimeDir), "console.log")
			v, err := Start(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = v.Ready(ctx, "test")
			want := "the VM stopped during boot: " + tt.want + "; see " + s.ConsoleLog
			if err == nil || err.Error() != want || !errors.Is(err, ErrExited) {
				t.Errorf("Ready error\n got %v\nwant %s", err, want)
			}
			if err := v.Err(); err == nil || !strings.Contains(err.Error(), tt.errWant) {
				t.Errorf("Err() = %v, want %q", err, tt.errWant)
			}
		})
	}
}

func TestReadyTimeout(t *testing.T) {
	s := spec(t, "hung")
	v, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { v.Kill(); v.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = v.Ready(ctx, "test")
	if err == nil || !strings.Contains(err.Error(), "did not become ready") || !strings.Contains(err.Error(), "Linux version 6.1.0-fake") {
		t.Errorf("error = %v", err)
	}
}

func TestShutdownEscalation(t *testing.T) {
	defer func(a, q time.Duration) { acpiTimeout, quitTimeout = a, q }(acpiTimeout, quitTimeout)
	acpiTimeout, quitTimeout = 500*time.Millisecond, 500*time.Millisecond
	for _, tt := range []struct{ mode, want string }{
		{"acpi", "powered off through ACPI"},
		{"hung", "QEMU quit without a guest power-off"},
		{"stubborn", "QEMU was killed"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			s := spec(t, tt.mode)
			v, err := Start(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := v.Shutdown(ctx, false); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Shutdown error = %v, want %q", err, tt.want)
				}
			case <-time.After(20 * time.Second):
				v.Kill()
				t.Fatal("Shutdown did not return")
			}
			select {
			case <-v.Done():
			default:
				t.Error("QEMU still running after Shutdown returned")
			}
			if _, err := os.Stat(s.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("runtime dir left behind: %v", err)
			}
		})
	}
}

// TestShutdownAfterCloseQuitsAHungKernel: the agent closed everything, then the guest kernel never
// powered off: QEMU is quit after closedExitTimeout and the stop is clean (nothing was open).
func TestShutdownAfterCloseQuitsAHungKernel(t *testing.T) {
	defer func(c time.Duration) { closedExitTimeout = c }(closedExitTimeout)
	closedExitTimeout = 300 * time.Millisecond
	v, err := Start(context.Background(), spec(t, "nopoweroff"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	reply, err := v.Shutdown(context.Background(), false)
	if err != nil || reply == nil || !reply.Closed {
		t.Fatalf("Shutdown = %+v, %v; want the agent's reply and no error", reply, err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("Shutdown took %s: the 30 s escalation ran instead of the quick quit", took)
	}
	select {
	case <-v.Done():
	default:
		t.Error("QEMU still running after Shutdown returned")
	}
}

// TestLifetime: QEMU is killed once its lifetime has passed. The lifetime runs from QEMU's start,
// so under load a 300 ms one can end before the (fake) QEMU has even connected its control
// channel; the test's clock therefore fires at the later of the real 300 ms and Start's return.
func TestLifetime(t *testing.T) {
	s := spec(t, "hung")
	s.Lifetime = 300 * time.Millisecond
	started := make(chan struct{})
	asked := make(chan time.Duration, 1) // the hook runs in Start's goroutine
	defer func(f func(time.Duration) <-chan time.Time) { lifetimeTimer = f }(lifetimeTimer)
	lifetimeTimer = func(d time.Duration) <-chan time.Time {
		asked <- d
		real := time.After(d)
		ch := make(chan time.Time, 1)
		go func() {
			now := <-real
			<-started
			ch <- now
		}()
		return ch
	}
	t0 := time.Now()
	v, err := Start(context.Background(), s)
	close(started)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Done():
		if d := <-asked; d != s.Lifetime {
			t.Errorf("lifetime clock set to %s, want %s", d, s.Lifetime)
		}
		if err := v.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("Err() = %v", err)
		}
		if took := time.Since(t0); took < s.Lifetime {
			t.Errorf("QEMU ended after %s, before its %s lifetime", took, s.Lifetime)
		}
	case <-time.After(10 * time.Second):
		v.Kill()
		t.Fatal("lifetime did not kill QEMU")
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"a\nb\n\n":                  "b",
		"x\r\n[  1.0] boot\x1b\r\n": "[  1.0] boot",
	} {
		if got := lastLine(in); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunAsNeedsReachableDir(t *testing.T) {
	s := spec(t, "agent")
	os.Chmod(filepath.Dir(s.RuntimeDir), 0o700)
	s.RunAs = &User{UID: 65534, GID: 65534} // checked before any chown: no root needed
	_, err := Start(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the runtime directory") {
		t.Fatalf("error = %v", err)
	}
}
