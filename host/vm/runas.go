package vm

import (
	"os"

	"github.com/luksmount/luksmount/host/qemu"
)

// Unprivileged decides how QEMU is started by a supervisor with effective uid euid on goos, for
// the disk luksmount opened and locked (disk; hostDevice says it is a device, not an image file)
// on behalf of invoking (the sudo user, or nil). It returns the descriptors to hand QEMU
// (Spec.DiskFiles) and the user QEMU runs as (Spec.RunAs; nil = as this process).
//
// Linux: QEMU always gets the open disk (-add-fd), so under sudo it is started as the user.
// macOS: no descriptor for devices (QEMU's F_SETFL on it fails, see qemu.DiskFDWorks), so QEMU
// opens the path itself and, under sudo, drops to the user before the guest runs (see dropByQEMU).
func Unprivileged(goos string, euid int, invoking *User, disk *os.File, hostDevice bool) (files []*os.File, runAs *User) {
	if disk != nil && goos == "linux" && qemu.DiskFDWorks(goos, hostDevice) {
		files = []*os.File{disk}
	}
	if euid == 0 && invoking != nil && invoking.UID != 0 && (goos == "linux" || goos == "darwin") {
		u := *invoking
		runAs = &u
	}
	return files, runAs
}

// launch is how Start runs QEMU for a Spec on goos: the credential the child is exec'd with
// (nil = ours) and, where QEMU must drop root itself, its -run-with user=.
type launch struct {
	exec      *User
	qemuRunAs *qemu.RunAs
}

// dropByQEMU reports whether QEMU must be exec'd as root and drop to the user itself. On macOS it
// must open the raw disk node (root:operator 0640) itself; it then setuid()s before the guest
// runs (qemu.RunAs). On Linux it is exec'd as the user directly, holding the disk descriptor.
func dropByQEMU(goos string) bool { return goos == "darwin" }

func planLaunch(goos string, runAs *User) launch {
	switch {
	case runAs == nil:
		return launch{}
	case dropByQEMU(goos):
		return launch{qemuRunAs: &qemu.RunAs{UID: runAs.UID, GID: runAs.GID}}
	default:
		return launch{exec: runAs}
	}
}
