// Package vmtest boots the real guest images from VM tests the way the product does (host/images
// finds them, host/qemu renders the command line, host/vm runs QEMU, gvproxy and the control
// channel), and when a test fails it logs what reproduces and explains the failure: the quoted QEMU
// command line, the console tail and the agent's timeline (after vmtest's StartT).
package vmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
)

// Options varies the VM. Zero values are the defaults noted.
type Options struct {
	Arch      qemu.Arch  // "" = amd64
	Accel     qemu.Accel // "" = the host's accelerator for its own architecture, else TCG
	MemoryMiB int        // 0 = qemu.PlainMemoryMiB
	CPUs      int        // 0 = 1
	Cmdline   string     // extra kernel command line
	Disks     []qemu.Disk
	// DiskFiles and RunAs: see vm.Spec (the Linux sudo path).
	DiskFiles []*os.File
	RunAs     *vm.User
	// Lifetime is a hard limit on the VM (0 = 10 min); ReadyTimeout bounds the boot to Hello
	// (0 = 3 min).
	Lifetime     time.Duration
	ReadyTimeout time.Duration
	// HostVersion is what the test says in Hello ("" = "vmtest").
	HostVersion string
	// Dir is the scratch directory for the runtime directory and console log ("" = a new short
	// one under the system temp directory, removed at cleanup: unix socket paths are limited).
	Dir string
}

// VM is a booted agent VM whose agent has answered Hello.
type VM struct {
	*vm.VM
	Hello      *control.HelloReply
	RuntimeDir string // removed by host/vm when QEMU exits
	Dir        string // scratch directory (console.log is here)

	t      testing.TB
	arch   qemu.Arch
	mu     sync.Mutex
	events []control.Event
}

// Images returns the guest kernel and initramfs for arch: $LUKSMOUNT_KERNEL and
// $LUKSMOUNT_INITRD if set, else what host/images finds (build/<arch> in the source tree).
func Images(t testing.TB, arch qemu.Arch) (kernel, initrd string) {
	t.Helper()
	if k, i := os.Getenv("LUKSMOUNT_KERNEL"), os.Getenv("LUKSMOUNT_INITRD"); k != "" && i != "" {
		return k, i
	}
	img, err := images.Find(string(arch))
	if err != nil {
		t.Fatal(err)
	}
	return img.Kernel, img.Initrd
}

// Accel is the accelerator the VM tests use for arch on this machine: the real one when the
// guest matches the host and it works, else TCG.
func Accel(arch qemu.Arch) qemu.Accel {
	if string(arch) == runtime.GOARCH {
		return qemu.DetectAccel(runtime.GOOS, runtime.GOARCH)
	}
	return qemu.AccelTCG
}

// Start boots a VM and waits for the agent's Hello, failing the test if it does not come. At
// cleanup the VM is killed (tests shut down cleanly themselves when that is what they check); if
// the test failed, the quoted command line, the console tail and the agent timeline are logged.
func Start(t testing.TB, o Options) *VM {
	t.Helper()
	o.fill()
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "lmvm") // short: unix socket paths are limited
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		o.Dir = d
	}
	kernel, initrd := Images(t, o.Arch)
	v := &VM{t: t, arch: o.Arch, Dir: o.Dir, RuntimeDir: filepath.Join(o.Dir, "run")}
	spec := vm.Spec{
		Config: qemu.Config{
			Arch: o.Arch, Accel: o.Accel, HostOS: runtime.GOOS,
			MemoryMiB: o.MemoryMiB, CPUs: o.CPUs, Kernel: kernel, Initrd: initrd, Cmdline: o.Cmdline,
			Disks: o.Disks,
		},
		DiskFiles:  o.DiskFiles,
		RunAs:      o.RunAs,
		RuntimeDir: v.RuntimeDir,
		ConsoleLog: filepath.Join(o.Dir, "console.log"),
		Lifetime:   o.Lifetime,
		OnEvent:    v.record,
		Logf:       func(format string, args ...any) { t.Logf("host: "+format, args...) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.ReadyTimeout)
	defer cancel()
	started, err := vm.Start(ctx, spec)
	if err != nil {
		// host/vm has logged the command line through Logf; the error carries the console's end.
		t.Fatalf("start VM: %v", err)
	}
	v.VM = started
	t.Cleanup(func() {
		if t.Failed() {
			v.Report()
		}
		v.Kill()
		v.Wait()
	})
	if v.Hello, err = v.Ready(ctx, o.HostVersion); err != nil {
		t.Fatalf("agent not ready: %v", err)
	}
	return v
}

// fill sets the defaults Options documents.
func (o *Options) fill() {
	if o.Arch == "" {
		o.Arch = qemu.ArchAMD64
	}
	if o.Accel == "" {
		o.Accel = Accel(o.Arch)
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = qemu.PlainMemoryMiB
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.Lifetime == 0 {
		o.Lifetime = 10 * time.Minute
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	if o.HostVersion == "" {
		o.HostVersion = "vmtest"
	}
}

func (v *VM) record(e control.Event) {
	v.mu.Lock()
	v.events = append(v.events, e)
	v.mu.Unlock()
}

// Report logs what a failure needs: the command line to reproduce the boot, the console tail
// and the agent timeline.
func (v *VM) Report() {
	v.t.Helper()
	v.t.Logf("qemu command line (to reproduce):\n%s", qemu.Quote(append([]string{qemu.BinaryFor(v.arch)}, v.Args()...)))
	v.t.Logf("console tail:\n%s", v.ConsoleTail(60))
	v.LogTimeline("agent timeline")
}

// Events is every event the agent sent so far.
func (v *VM) Events() []control.Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]control.Event(nil), v.events...)
}

// Timeline is the agent's boot timeline (from Hello) followed by the steps it reported since.
func (v *VM) Timeline() []control.Event {
	var all []control.Event
	if v.Hello != nil {
		all = append(all, v.Hello.Timeline...)
	}
	seen := map[string]bool{}
	for _, e := range all {
		seen[fmt.Sprint(e.Time, e.Step)] = true
	}
	for _, e := range v.Events() {
		if e.Kind == control.EventStep && !seen[fmt.Sprint(e.Time, e.Step)] {
			all = append(all, e)
		}
	}
	return all
}

// LogTimeline logs the agent's steps with their start (seconds since kernel start) and duration.
func (v *VM) LogTimeline(title string) {
	v.t.Helper()
	v.t.Logf("%s:\n%s", title, FormatSteps(v.Timeline()))
}

// FormatSteps renders the step events among evs, one a line.
func FormatSteps(evs []control.Event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Kind == control.EventStep {
			fmt.Fprintf(&b, "  %7.3fs  %-22s %7.3fs  %s\n", e.Time, e.Step, e.Duration, e.Message)
		}
	}
	return b.String()
}

// ShutdownClean asks the agent for a clean shutdown, fails the test unless it synced, unmounted and
// closed and QEMU exited cleanly, and returns the reply.
func (v *VM) ShutdownClean(t testing.TB) *control.ShutdownReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := v.VM.Shutdown(ctx, false)
	if err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r == nil || !r.Synced || !r.Unmounted || !r.Closed {
		t.Fatalf("shutdown reply = %+v; want synced, unmounted and closed", r)
	}
	if err := v.Wait(); err != nil {
		t.Fatalf("QEMU exit after shutdown: %v", err)
	}
	return r
}

// NewDisk makes a sparse raw disk image of size bytes in a test temp directory.
func NewDisk(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}
