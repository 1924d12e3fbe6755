//go:build vmtest

// Package e2e boots the real guest images through the product's own VM layer (host/vm: QEMU,
// in-process gvproxy, the 127.0.0.1 NFS forward) and checks them with clients we did not write.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/libnfs"
	"github.com/luksmount/luksmount/test/vmtest"
)

// testPassphrase is only ever used for throwaway test images.
const testPassphrase = "correct horse battery staple"

// fastKDF keeps argon2id cheap under TCG; the cost is still real argon2id.
var fastKDF = control.FormatRequest{Type: "luks2", PBKDF: "argon2id", PBKDFMemoryKiB: 32768, PBKDFForceIterations: 4}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// newDisk makes a sparse disk image for the test.
var newDisk = vmtest.NewDisk

// guest is one booted agent VM (test/vmtest: on failure it logs the quoted QEMU command line, the
// console tail and the agent timeline).
type guest struct {
	*vmtest.VM
	t testing.TB
}

// logTimeline prints the guest's steps with their times (seconds since kernel start).
func (g *guest) logTimeline(title string) { g.LogTimeline(title + ": guest timeline") }

type bootOpts struct {
	arch      string
	memoryMiB int
	cpus      int
	readOnly  bool
	lifetime  time.Duration // hard limit on the VM; 0 = 15 min
}

// boot starts the agent VM on disk and waits for Hello.
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
	v := vmtest.Start(t, vmtest.Options{
		Arch: qemu.Arch(o.arch), MemoryMiB: o.memoryMiB, CPUs: o.cpus,
		Disks:    []qemu.Disk{{Path: disk, ReadOnly: o.readOnly, Serial: "e2e"}},
		Lifetime: o.lifetime, ReadyTimeout: 2 * time.Minute, HostVersion: "e2e",
	})
	return &guest{VM: v, t: t}
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
	return g.ShutdownClean(t)
}
