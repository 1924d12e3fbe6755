//go:build vmtest

// Package e2e boots the real guest images through the product's own VM layer (host/vm: QEMU,
// in-process gvproxy, the 127.0.0.1 NFS forward) and checks them with clients we did not write.
package e2e

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

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/libnfs"
)

// testPassphrase is only ever used for throwaway test images.
const testPassphrase = "correct horse battery staple"

// fastKDF keeps argon2id cheap under TCG; the cost is still real argon2id.
var fastKDF = control.FormatRequest{Type: "luks2", PBKDF: "argon2id", PBKDFMemoryKiB: 32768, PBKDFForceIterations: 4}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func images(t testing.TB, arch string) (kernel, initrd string) {
	dir := filepath.Join(repoRoot(t), "build", arch)
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initramfs.cpio.gz")
	for _, p := range []string{kernel, initrd} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("guest image missing: %v (run `make images`)", err)
		}
	}
	return kernel, initrd
}

func newDisk(t testing.TB, size int64) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// guest is one booted agent VM plus what it reported.
type guest struct {
	*vm.VM
	t      testing.TB
	mu     sync.Mutex
	events []control.Event
	hello  *control.HelloReply
}

func (g *guest) timeline() []control.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var all []control.Event
	if g.hello != nil {
		all = append(all, g.hello.Timeline...)
	}
	seen := map[string]bool{}
	for _, e := range all {
		seen[fmt.Sprint(e.Time, e.Step)] = true
	}
	for _, e := range g.events {
		if e.Kind == control.EventStep && !seen[fmt.Sprint(e.Time, e.Step)] {
			all = append(all, e)
		}
	}
	return all
}

// logTimeline prints the guest's steps with their times (seconds since kernel start).
func (g *guest) logTimeline(title string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: guest timeline (TCG)\n", title)
	for _, e := range g.timeline() {
		if e.Kind != control.EventStep {
			continue
		}
		fmt.Fprintf(&b, "  %7.3fs  %-22s %7.3fs  %s\n", e.Time, e.Step, e.Duration, e.Message)
	}
	g.t.Log(b.String())
}

type bootOpts struct {
	arch      string
	memoryMiB int
	cpus      int
	readOnly  bool
	lifetime  time.Duration // hard limit on the VM; 0 = 15 min
}

// boot starts the agent VM on disk and waits for Hello. On failure the test prints the console
// tail and the timeline.
func boot(t testing.TB, disk string, o bootOpts) *guest {
	t.Helper()
	if o.arch == "" {
		o.arch = "amd64"
	}
	if o.memoryMiB == 0 {
		o.memoryMiB = qemu.MemoryForKDF(32)
	}
	if o.cpus == 0 {
		o.cpus = 2
	}
	if o.lifetime == 0 {
		o.lifetime = 15 * time.Minute
	}
	kernel, initrd := images(t, o.arch)
	g := &guest{t: t}
	dir, err := os.MkdirTemp("", "lm-e2e-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := qemu.Config{
		Arch: qemu.Arch(o.arch), Accel: qemu.AccelTCG, HostOS: runtime.GOOS,
		MemoryMiB: o.memoryMiB, CPUs: o.cpus, Kernel: kernel, Initrd: initrd,
		Disks: []qemu.Disk{{Path: disk, ReadOnly: o.readOnly, Serial: "e2e"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := vm.Start(ctx, vm.Spec{
		Config:     cfg,
		RuntimeDir: filepath.Join(dir, "run"),
		ConsoleLog: filepath.Join(dir, "console.log"),
		Lifetime:   o.lifetime,
		OnEvent: func(e control.Event) {
			g.mu.Lock()
			g.events = append(g.events, e)
			g.mu.Unlock()
		},
		Logf: func(format string, args ...any) { t.Logf("host: "+format, args...) },
	})
	if err != nil {
		t.Fatalf("start VM: %v", err)
	}
	g.VM = v
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console tail:\n%s", v.ConsoleTail(60))
			g.logTimeline("failed test")
		}
		select {
		case <-v.Done():
		default:
			v.Kill()
			<-v.Done()
		}
	})
	h, err := v.Ready(ctx, "e2e")
	if err != nil {
		t.Fatalf("agent not ready: %v", err)
	}
	g.mu.Lock()
	g.hello = h
	g.mu.Unlock()
	return g
}

func (g *guest) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 3*time.Minute)
}

// nfs returns a libnfs client for the guest's export through the 127.0.0.1 forward.
func (g *guest) nfs(export string) libnfs.Client {
	return libnfs.Client{Addr: g.NFSAddr(), Export: export, UID: os.Getuid(), GID: os.Getgid()}
}

// shutdown asks for a clean shutdown and checks every step happened and QEMU exited cleanly.
func (g *guest) shutdown(t testing.TB) *control.ShutdownReply {
	t.Helper()
	ctx, cancel := g.ctx()
	defer cancel()
	r, err := g.Shutdown(ctx, false)
	if err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r == nil || !r.Synced || !r.Unmounted || !r.Closed {
		t.Fatalf("shutdown reply = %+v; want synced, unmounted and closed", r)
	}
	return r
}
