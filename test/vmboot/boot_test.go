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
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/version"
	"github.com/luksmount/luksmount/test/vmtest"
)

type bootOpts struct {
	arch      qemu.Arch
	disk      *qemu.Disk
	diskSize  int64
	lifetime  time.Duration
	readyWait time.Duration
	runAs     *vm.User // run QEMU as this user with the disk handed over as a descriptor
}

// boot starts a VM through test/vmtest and waits for Hello.
func boot(t *testing.T, o bootOpts) (*vmtest.VM, string) {
	t.Helper()
	base, err := os.MkdirTemp("", "vmboot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if o.runAs != nil {
		os.Chmod(base, 0o711) // QEMU as the user must traverse to the runtime directory
	}
	var disks []qemu.Disk
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
		disks = []qemu.Disk{d}
	}
	var diskFiles []*os.File
	if o.runAs != nil && o.disk != nil {
		f, err := os.OpenFile(disks[0].Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		diskFiles = []*os.File{f}
		os.Chmod(disks[0].Path, 0o600) // only the descriptor lets QEMU in
	}
	t0 := time.Now()
	v := vmtest.Start(t, vmtest.Options{
		Arch: o.arch, Disks: disks, DiskFiles: diskFiles, RunAs: o.runAs, Dir: base,
		Lifetime: o.lifetime, ReadyTimeout: o.readyWait, HostVersion: version.String(),
	})
	if o.runAs != nil {
		if uid := processUID(t, v.Pid()); uid != int(o.runAs.UID) {
			t.Errorf("QEMU runs as uid %d, want %d", uid, o.runAs.UID)
		}
	}
	h := v.Hello
	t.Logf("%s %s: Hello after %s (kernel %s, agent %s)", o.arch, v.Accel(), time.Since(t0).Round(time.Millisecond), h.Kernel, h.AgentVersion)
	v.LogTimeline("guest timeline")
	return v, v.RuntimeDir
}

func shutdown(t *testing.T, v *vmtest.VM, runtimeDir string) {
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
	v, dir := boot(t, bootOpts{
		arch:      qemu.ArchAMD64,
		disk:      &qemu.Disk{LogicalBlockSize: 4096, PhysicalBlockSize: 4096, Serial: "vmboot"},
		diskSize:  size,
		lifetime:  5 * time.Minute,
		readyWait: 3 * time.Minute,
		runAs:     runAs,
	})
	if h := v.Hello; h.Arch != "amd64" || h.ProtocolVersion != control.ProtocolVersion {
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
	v, dir := boot(t, bootOpts{
		arch:      qemu.ArchARM64,
		lifetime:  5 * time.Minute,
		readyWait: 3 * time.Minute,
	})
	if h := v.Hello; h.Arch != "arm64" {
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
