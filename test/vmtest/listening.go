package vmtest

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/control"
)

// Listening is an agent VM whose control port QEMU listens on, so a test can play a host that
// goes away and comes back (host/vm holds one channel for the VM's life and cannot). It has no
// network. The command line is host/qemu's, like every other VM's.
type Listening struct {
	Socket  string // the control socket to dial
	argv    []string
	console string
	done    chan error
	cmd     *exec.Cmd
}

// StartListening boots such a VM (Options as for Start; Disks, DiskFiles and RunAs: Disks only).
// At cleanup QEMU is killed; if the test failed, the quoted command line and console tail are
// logged.
func StartListening(t testing.TB, o Options) *Listening {
	t.Helper()
	o.fill()
	dir, err := os.MkdirTemp("", "lmvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	kernel, initrd := Images(t, o.Arch)
	l := &Listening{Socket: filepath.Join(dir, "ctl.sock"), console: filepath.Join(dir, "console.log"), done: make(chan error, 1)}
	cfg := qemu.Config{
		Arch: o.Arch, Accel: o.Accel, HostOS: runtime.GOOS, MemoryMiB: o.MemoryMiB, CPUs: o.CPUs,
		Kernel: kernel, Initrd: initrd, Cmdline: o.Cmdline, Disks: o.Disks,
		ControlSocket: l.Socket, ControlServer: true, ConsoleLog: l.console,
	}
	args, err := cfg.Args()
	if err != nil {
		t.Fatal(err)
	}
	l.argv = append([]string{cfg.Binary()}, args...)
	t.Logf("qemu command line: %s", qemu.Quote(l.argv))
	l.cmd = exec.Command(l.argv[0], args...)
	var stderr strings.Builder
	l.cmd.Stdout, l.cmd.Stderr = &stderr, &stderr
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", l.argv[0], err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	kill := time.AfterFunc(o.Lifetime, func() { l.cmd.Process.Kill() })
	t.Cleanup(func() {
		kill.Stop()
		l.cmd.Process.Kill()
		err := l.Wait(10 * time.Second)
		if t.Failed() {
			t.Logf("qemu command line (to reproduce):\n%s", qemu.Quote(l.argv))
			t.Logf("qemu: %v %s", err, strings.TrimSpace(stderr.String()))
			t.Logf("console tail:\n%s", tail(l.console, 60))
		}
	})
	return l
}

// Dial connects to the agent, retrying while QEMU starts up (30 s at most).
func (l *Listening) Dial(t testing.TB, onEvent func(control.Event)) *control.Client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", l.Socket)
		if err == nil {
			return control.NewClient(c, onEvent)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot connect to %s: %v", l.Socket, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Wait waits up to within for QEMU to exit and returns its exit error; a timeout is an error.
func (l *Listening) Wait(within time.Duration) error {
	select {
	case err := <-l.done:
		l.done <- err
		return err
	case <-time.After(within):
		return ErrNoExit
	}
}

// ErrNoExit is Listening.Wait's error when QEMU is still running.
var ErrNoExit = errors.New("QEMU did not exit in time")

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
