package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/host/mountpoint"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
)

// bootVM starts QEMU for spec through host/vm with the guest images that go with this binary.
func bootVM(ctx context.Context, spec BootSpec) (Machine, error) {
	arch := qemu.Arch(runtime.GOARCH)
	imgs, err := images.Find(string(arch))
	if err != nil {
		return nil, err
	}
	accel := qemu.DetectAccel(runtime.GOOS, runtime.GOARCH)
	if spec.Accel != "" {
		if accel, err = qemu.ParseAccel(spec.Accel); err != nil {
			return nil, err
		}
		if err := qemu.CheckAccel(accel, runtime.GOOS, runtime.GOARCH, arch); err != nil {
			return nil, fmt.Errorf("--accel %s: %w", accel, err)
		}
	}
	dev := spec.Device
	cfg := qemu.Config{
		Arch: arch, Accel: accel, HostOS: runtime.GOOS,
		MemoryMiB: spec.MemoryMiB, CPUs: spec.CPUs,
		Kernel: imgs.Kernel, Initrd: imgs.Initrd, Cmdline: guestCmdline(os.Getenv),
		Disks: []qemu.Disk{{
			Path: dev.Path, HostDevice: !dev.IsImage, ReadOnly: dev.ReadOnly,
			LogicalBlockSize: dev.LogicalBlockSize, PhysicalBlockSize: dev.PhysicalBlockSize,
			Serial: "luksmount", Discard: spec.Discard,
		}},
	}
	vs := vm.Spec{
		Config:     cfg,
		RuntimeDir: filepath.Join(spec.SessionDir, "vm"),
		ConsoleLog: spec.ConsoleLog,
		OnEvent:    spec.OnEvent,
		OnQMPEvent: spec.OnQMPEvent,
		Logf:       spec.Logf,
	}
	// Under sudo QEMU runs as the invoking user (Linux: exec'd as the user with the disk we opened
	// and locked; macOS: it drops root itself once the disk is open): a compromised QEMU then
	// holds that user's rights plus this one disk, not root's.
	var invoking *vm.User
	if u, ok := mountpoint.InvokingUser(os.Getenv); ok {
		invoking = &vm.User{UID: uint32(u.UID), GID: uint32(u.GID)}
	}
	vs.DiskFiles, vs.RunAs = vm.Unprivileged(runtime.GOOS, os.Geteuid(), invoking, dev.File, !dev.IsImage)
	addMembers(&vs, spec, invoking)
	addHeader(&vs, spec, invoking) // last: it never shifts the drives' guest names
	v, err := vm.Start(ctx, vs)
	if err != nil {
		return nil, err
	}
	return v, nil
}
