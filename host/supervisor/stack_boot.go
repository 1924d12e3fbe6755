package supervisor

import (
	"os"
	"runtime"
	"strings"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
)

// guestDisks is the one place the order of a target's devices in the guest is decided: the
// first device (boot.go's disk 0, /dev/vda), then each member in the order the user named it
// (/dev/vdb, /dev/vdc, ...: qemu.Config.Disks are attached, and named by the guest, in order).
// addMembers attaches them in this order and guestDevName maps guest names back with it.
func guestDisks(first *blockdev.Device, members []*blockdev.Device) []*blockdev.Device {
	return append([]*blockdev.Device{first}, members...)
}

// guestDiskIndex parses a guest disk or partition name: "/dev/vdb3" is disk 1, partition "3".
// Only vda to vdz: a target has far fewer than 26 devices.
func guestDiskIndex(dev string) (disk int, part string, ok bool) {
	rest, ok := strings.CutPrefix(dev, "/dev/vd")
	if !ok || rest == "" || rest[0] < 'a' || rest[0] > 'z' {
		return 0, "", false
	}
	part = rest[1:]
	for _, c := range part {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	return int(rest[0] - 'a'), part, true
}

// addMembers presents a multi-device target's further devices as /dev/vdb, /dev/vdc, ... with
// the first device's treatment (descriptor passing, discard).
func addMembers(vs *vm.Spec, spec BootSpec, invoking *vm.User) {
	for _, d := range guestDisks(spec.Device, spec.Members)[1:] { // disk 0 is boot.go's
		vs.Config.Disks = append(vs.Config.Disks, qemu.Disk{
			Path: d.Path, HostDevice: !d.IsImage, ReadOnly: d.ReadOnly,
			LogicalBlockSize: d.LogicalBlockSize, PhysicalBlockSize: d.PhysicalBlockSize,
			Discard: spec.Discard,
		})
		files, _ := vm.Unprivileged(runtime.GOOS, os.Geteuid(), invoking, d.File, !d.IsImage)
		if len(vs.DiskFiles) == len(vs.Config.Disks)-1 && len(files) == 1 {
			vs.DiskFiles = append(vs.DiskFiles, files[0])
		}
	}
}

// EnvGuestDebug=1 boots the guest with luksmount.debug: the agent then logs each command it runs
// (its argv, never its stdin) to the console log, for developers and for the tests that check
// what the guest's process list shows (test/storage TestStackVeraCrypt).
const EnvGuestDebug = "LUKSMOUNT_GUEST_DEBUG"

// guestCmdline is what the environment adds to the guest's kernel command line.
func guestCmdline(getenv func(string) string) string {
	if getenv(EnvGuestDebug) == "1" {
		return "luksmount.debug"
	}
	return ""
}
