//go:build vmtest

package storage

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/clientvm"
	"github.com/luksmount/luksmount/test/vmtest"
)

// fsWorkload is the kernel-client workload adapted to one filesystem: the scenarios whose
// operations it supports run unchanged; what it cannot do is checked by refused-ops to fail
// with the right error (and change nothing) instead of being left out.
type fsWorkload struct {
	fsCase
	run     string // scenario pattern
	refuses string // workload.Refuse* names
	why     string // why the others are not run
}

const allButDurable = "^(files|rename|remove|symlinks|hardlinks|chmod|chown|utimes|special-files|sparse|many-files|unicode-names|concurrent-writers|fsx)$"

var fsWorkloads = []fsWorkload{
	{fsCase: fsCase{name: "btrfs", fs: "btrfs", size: 256 << 20, luks: true, wantType: "btrfs"}, run: allButDurable},
	{fsCase: fsCase{name: "xfs", fs: "xfs", size: 340 << 20, luks: true, wantType: "xfs"}, run: allButDurable},
	{fsCase: fsCase{name: "exfat", fs: "exfat", size: 96 << 20, wantType: "exfat"},
		run:     "^(files|rename|remove|many-files|concurrent-writers|fsx|refused-ops)$",
		refuses: "symlink,hardlink,chmod,chown,mknod",
		why:     "no symlinks, hard links, modes, owners or special files; times in 10 ms; no sparse files; names: no \\ : * ? \" < > |"},
	{fsCase: fsCase{name: "vfat", fs: "vfat", size: 96 << 20, wantType: "vfat"},
		run:     "^(files|rename|remove|many-files|concurrent-writers|fsx|refused-ops)$",
		refuses: "symlink,hardlink,chmod,chown,mknod",
		why:     "as exFAT, and times in 2 s, files under 4 GiB"},
	{fsCase: fsCase{name: "ntfs", fs: "ntfs", size: 96 << 20, wantType: "ntfs"},
		run:     "^(files|rename|remove|sparse|many-files|concurrent-writers|fsx|refused-ops)$",
		refuses: "hardlink,chmod,chown",
		why:     "ntfs-3g keeps no modes or owners (no permissions mapping, so Windows keeps access); hard links refused with path handles; times in 100 ns; windows_names refuses names Windows cannot open; symlinks untested"},
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestFilesystemsKernelClient runs the Linux kernel NFS client's workload on each filesystem.
// One agent VM holds every filesystem on its own disk and serves them in turn; each gets its
// own client VM (a fresh kernel mount).
func TestFilesystemsKernelClient(t *testing.T) {
	dir := filepath.Join(repoRoot(), "build", "amd64")
	kernel, image := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initramfs-nfsclient.cpio.lz4")
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("client image missing: %v (run `./build.sh test-vm`, which builds it)", err)
	}
	var disks []string
	for _, w := range fsWorkloads {
		disks = append(disks, vmtest.NewDisk(t, w.size))
	}
	v := bootFS(t, disks)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cl := v.Control()
	for i, w := range fsWorkloads {
		t.Run(w.name, func(t *testing.T) {
			t0 := time.Now()
			fr := control.FormatRequest{Device: dev(i), Type: "none", FS: w.fs}
			if w.luks {
				fr.Type, fr.PBKDF, fr.PBKDFMemoryKiB, fr.PBKDFForceIterations = "luks2", "argon2id", 32768, 4
			}
			if _, err := cl.Format(ctx, fr, []byte(fsPassphrase)); err != nil {
				t.Fatalf("format: %v", err)
			}
			v.open(t, ctx, i, w.fsCase)
			mounted, _ := cl.Status(ctx)
			_, p, _ := net.SplitHostPort(v.NFSAddr())
			port, _ := strconv.Atoi(p)
			rep, err := clientvm.Run(ctx, clientvm.Config{
				Arch: "amd64", Kernel: kernel, Image: image, Dir: t.TempDir(), Memory: 512, Timeout: 15 * time.Minute,
				Spec: clientvm.Spec{Port: port, Export: "/", MountOptions: "rsize=1048576,wsize=1048576",
					Run: w.run, Refuses: w.refuses, Files: 100, FSXSeconds: 10, Seed: 1},
			})
			if err != nil {
				if rep != nil {
					t.Logf("client console:\n%s", rep.Console)
				}
				t.Fatalf("client VM: %v", err)
			}
			for _, r := range rep.LogResults(t.Logf) {
				if r.Skipped {
					t.Errorf("%s skipped on %s: every scenario picked for a filesystem must run", r.Name, w.name)
				}
			}
			if errs := rep.Errors(); len(errs) > 0 || !rep.Done || rep.Failed > 0 || rep.Passed == 0 {
				t.Logf("client console:\n%s", rep.Console)
				t.Fatalf("workload on %s: %d passed, %d failed, finished=%v %s", w.name, rep.Passed, rep.Failed, rep.Done, strings.Join(errs, "; "))
			}
			// 9.7: what each filesystem costs in guest memory (MemAvailable, with its modules loaded).
			if after, err := cl.Status(ctx); err == nil && mounted != nil {
				t.Logf("%s memory: total %d MiB, available %d MiB mounted, %d MiB after the workload",
					w.name, after.MemTotalKiB>>10, mounted.MemAvailableKiB>>10, after.MemAvailableKiB>>10)
			}
			if w.why != "" {
				t.Logf("not run on %s, checked by refused-ops or not applicable: %s", w.name, w.why)
			}
			v.close(t, ctx, w.name)
			t.Logf("%s: format + workload + stop: %.1fs", w.name, time.Since(t0).Seconds())
		})
	}
	v.ShutdownClean(t)
}
