//go:build vmtest

// Package vmboot boots the real guest images through host/vm: the agent answers, sees its disk
// with the right geometry, and shuts the VM down cleanly.
package vmboot

import (
	"context"
	"errors"
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
	"github.com/luksmount/luksmount/pkg/version"
)

// events records the agent's timeline for failure reports.
type events struct {
	mu  sync.Mutex
	evs []control.Event
}

func (e *events) add(ev control.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.evs {
		fmt.Fprintf(&b, "  %7.3fs %-8s %s %s", ev.Time, ev.Kind, ev.Step, ev.Message)
		if ev.Duration > 0 {
			fmt.Fprintf(&b, " (%.3fs)", ev.Duration)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

type bootOpts struct {
	arch      qemu.Arch
	disk      *qemu.Disk
	diskSize  int64
	lifetime  time.Duration
	readyWait time.Duration
	runAs     *vm.User // run QEMU as this user with the disk handed over as a descriptor
}

// boot starts a VM and waits for Hello; on any failure of the test it prints the console tail and
// the agent's timeline.
func boot(t *testing.T, o bootOpts) (*vm.VM, *control.HelloReply, string) {
	t.Helper()
	img, err := images.Find(string(o.arch))
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "vmboot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if o.runAs != nil {
		os.Chmod(base, 0o711) // QEMU as the user must traverse to the runtime directory
	}
	accel := qemu.AccelTCG
	if string(o.arch) == runtime.GOARCH {
		accel = qemu.DetectAccel(runtime.GOOS, runtime.GOARCH)
	}
	cfg := qemu.Config{
		Arch: o.arch, Accel: accel, HostOS: runtime.GOOS,
		MemoryMiB: qemu.PlainMemoryMiB, CPUs: 1,
		Kernel: img.Kernel, Initrd: img.Initrd,
	}
	if o.disk != nil {
		d := *o.disk
		d.Path = filepath.Join(base, "disk.img")
		f, err := os.Create(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(o.diskSize); err != nil {
			t.Fatal(err)
		}
		f.Close()
		cfg.Disks = []qemu.Disk{d}
	}
	var diskFiles []*os.File
	if o.runAs != nil && o.disk != nil {
		f, err := os.OpenFile(cfg.Disks[0].Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		diskFiles = []*os.File{f}
		os.Chmod(cfg.Disks[0].Path, 0o600) // only the descriptor lets QEMU in
	}
	ev := &events{}
	spec := vm.Spec{
		DiskFiles:  diskFiles,
		RunAs:      o.runAs,
		Config:     cfg,
		RuntimeDir: filepath.Join(base, "run"),
		ConsoleLog: filepath.Join(base, "console.log"),
		Lifetime:   o.lifetime,
		OnEvent:    ev.add,
		Logf:       t.Logf,
	}
	t0 := time.Now()
	v, err := vm.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu %s %s", v.Args(), "")
			t.Logf("console tail:\n%s", v.ConsoleTail(40))
			t.Logf("agent timeline:\n%s", ev)
		}
		v.Kill()
		v.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), o.readyWait)
	defer cancel()
	h, err := v.Ready(ctx, version.String())
	if err != nil {
		t.Fatalf("agent not ready: %v", err)
	}
	if o.runAs != nil {
		if uid := processUID(t, v.Pid()); uid != int(o.runAs.UID) {
			t.Errorf("QEMU runs as uid %d, want %d", uid, o.runAs.UID)
		}
	}
	t.Logf("%s %s: Hello after %s (kernel %s, agent %s)", o.arch, accel, time.Since(t0).Round(time.Millisecond), h.Kernel, h.AgentVersion)
	for _, e := range h.Timeline {
		if e.Kind == control.EventStep {
			t.Logf("  guest %7.3fs %s (%.3fs) %s", e.Time, e.Step, e.Duration, e.Message)
		}
	}
	return v, h, spec.RuntimeDir
}

func shutdown(t *testing.T, v *vm.VM, runtimeDir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	if _, err := v.Shutdown(ctx, false); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := v.Wait(); err != nil {
		t.Fatalf("QEMU exit: %v", err)
	}
	t.Logf("shutdown to QEMU exit: %s", time.Since(t0).Round(time.Millisecond))
	if _, err := os.Stat(runtimeDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime dir %s still exists after exit (%v)", runtimeDir, err)
	}
}

// amd64 under this host's accelerator: Hello, Probe sees the 64 MiB disk as a 4Kn drive, Shutdown.
func TestBootAMD64(t *testing.T) { testBootAMD64(t, nil) }

// The Linux sudo path: QEMU runs as an unprivileged user and gets the disk (mode 0600, root's) as
// an inherited descriptor through -add-fd.
func TestBootAMD64RunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (to start QEMU as uid 65534); the VM tier runs as root")
	}
	testBootAMD64(t, &vm.User{UID: 65534, GID: 65534})
}

func testBootAMD64(t *testing.T, runAs *vm.User) {
	const size = 64 << 20
	v, h, dir := boot(t, bootOpts{
		arch:      qemu.ArchAMD64,
		disk:      &qemu.Disk{LogicalBlockSize: 4096, PhysicalBlockSize: 4096, Serial: "vmboot"},
		diskSize:  size,
		lifetime:  5 * time.Minute,
		readyWait: 3 * time.Minute,
		runAs:     runAs,
	})
	if h.Arch != "amd64" || h.ProtocolVersion != control.ProtocolVersion {
		t.Errorf("hello: arch %q, protocol %d", h.Arch, h.ProtocolVersion)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := v.Control().Probe(ctx)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	t.Logf("probe: %+v", p.Disks)
	var found bool
	for _, d := range p.Disks {
		if d.Device != "/dev/vda" {
			continue
		}
		found = true
		if d.Size != size || d.LogicalBlockSize != 4096 || d.ReadOnly {
			t.Errorf("/dev/vda: size %d, logical block %d, read-only %v; want %d, 4096, false", d.Size, d.LogicalBlockSize, d.ReadOnly, size)
		}
	}
	if !found {
		t.Errorf("the guest does not see /dev/vda: %+v", p.Disks)
	}
	shutdown(t, v, dir)
}

// arm64 always under TCG here (qemu-system-aarch64, -cpu max,pauth=off): up to Hello, then Shutdown.
func TestBootARM64(t *testing.T) {
	v, h, dir := boot(t, bootOpts{
		arch:      qemu.ArchARM64,
		lifetime:  5 * time.Minute,
		readyWait: 3 * time.Minute,
	})
	if h.Arch != "arm64" {
		t.Errorf("hello: arch %q", h.Arch)
	}
	shutdown(t, v, dir)
}

// processUID reads the real uid of pid from /proc.
func processUID(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			var uid int
			fmt.Sscan(f[1], &uid)
			return uid
		}
	}
	t.Fatal("no Uid line in /proc status")
	return -1
}
