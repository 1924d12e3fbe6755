//go:build vmtest

package storage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/luksmount/luksmount/test/stackfix"
	"golang.org/x/sys/unix"
)

// TestBtrfsMultiDeviceAndSubvol: a btrfs spanning two images (made by the guest's own
// mkfs.btrfs, metadata mirrored), with a subvolume "data" made on the host; mounted as
// a+b with -o subvol=data, written through NFS, stopped, mounted again and read back; the
// top level stays out of sight; one member alone is refused with what to attach, and is
// left byte-identical.
func TestBtrfsMultiDeviceAndSubvol(t *testing.T) {
	e := newStEnv(t)
	a, b := filepath.Join(e.dir, "multi0.img"), filepath.Join(e.dir, "multi1.img")
	for _, p := range []string{a, b} {
		if err := stackfix.Sparse(p, 160); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := stackfix.Run(ctx, e.dir, []string{a, b}, stackfix.Spec{Steps: []stackfix.Step{
		stackfix.Sh("mkfs.btrfs", "-f", "-L", "MULTI", "-d", "single", "-m", "raid1", "/dev/vda", "/dev/vdb"),
	}}); err != nil {
		t.Fatal(err)
	}
	hostSubvol(t, e.dir, []string{a, b}, "data", "top.txt")
	t.Logf("btrfs fixture made in %s", time.Since(start).Round(time.Millisecond))

	target := a + "+" + b
	data := noise(3<<20, 40)
	e.roundTrip("", target, "in-subvol.bin", data, "-o", "subvol=data")
	// The subvolume, not the top level, was served: top.txt is not there.
	e.must(0, "", "--no-mount", "--accel", "tcg", "-o", "subvol=data", target)
	if _, err := e.nfs(target).ReadFile("top.txt"); err == nil {
		t.Error("the top level's top.txt is visible: subvol=data was not mounted")
	}
	e.must(0, "", "stop", target)

	// One member alone: refused, says what to attach, changes nothing.
	before := fileSha(t, a)
	r := e.must(4, "", "--no-mount", "--accel", "tcg", a)
	t.Logf("one member alone: %s", e.oneLine(r, "spans 2 drives"))
	if !strings.Contains(r.stderr, "joined with +") {
		t.Errorf("the refusal does not say how to name both drives: %s", r.stderr)
	}
	if fileSha(t, a) != before {
		t.Fatal("a refused mount of half a btrfs changed the member")
	}
}

// hostSubvol mounts the btrfs held by imgs on the host (loop devices: the host kernel has
// btrfs, the host need not have btrfs-progs), creates subvolume name with the kernel's ioctl
// and a file top at the top level.
func hostSubvol(t *testing.T, dir string, imgs []string, name, top string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("making the btrfs subvolume fixture needs root (loop devices)")
	}
	var loops []string
	defer func() {
		for _, l := range loops {
			exec.Command("losetup", "-d", l).Run()
		}
	}()
	for _, img := range imgs {
		out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
		if err != nil {
			t.Fatalf("losetup %s: %v: %s", img, err, out)
		}
		loops = append(loops, strings.TrimSpace(string(out)))
	}
	mnt := filepath.Join(dir, "hostmnt")
	os.MkdirAll(mnt, 0o755)
	var opts []string
	for _, l := range loops {
		opts = append(opts, "device="+l)
	}
	if err := unix.Mount(loops[0], mnt, "btrfs", 0, strings.Join(opts, ",")); err != nil {
		t.Fatalf("mount the fixture btrfs on the host: %v", err)
	}
	defer func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount the host's btrfs fixture: %v", err)
		}
	}()
	f, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// struct btrfs_ioctl_vol_args { __s64 fd; char name[4088]; }; BTRFS_IOC_SUBVOL_CREATE is
	// _IOW(0x94, 14, that) (linux/btrfs.h).
	var args struct {
		fd   int64
		name [4088]byte
	}
	copy(args.name[:], name)
	const subvolCreate = 1<<30 | uintptr(unsafe.Sizeof(args))<<16 | 0x94<<8 | 14
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), subvolCreate, uintptr(unsafe.Pointer(&args))); errno != 0 {
		t.Fatalf("create subvolume %s: %v", name, errno)
	}
	if err := os.WriteFile(filepath.Join(mnt, top), []byte("top level\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
}
