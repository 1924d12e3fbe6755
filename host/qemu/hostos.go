package qemu

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Host-specific rendering choices. Each is platform-neutral so the darwin command line is pinned by
// tests on Linux; the comments name the sources that make them right.

// diskLockingOption is the file/host_device blockdev's locking option for hostOS ("" = QEMU's
// default, auto).
//
// macOS: luksmount holds a flock on the target for the whole session (host/blockdev) and hands
// QEMU the path. On xnu flock, POSIX and OFD locks live in one lock list per vnode and conflict by
// owner, not by kind (bsd/kern/kern_lockf.c lf_setlock -> lf_getblock -> lf_findoverlap), and
// devfs nodes support them (vfs_setlocklocal). QEMU's locking=auto turns byte-range locks on when
// F_OFD_SETLK exists and a probe on /dev/null works (util/osdep.c qemu_probe_lock_ops;
// block/file-posix.c raw_open_common, raw_apply_lock_bytes takes bytes 100+ as F_OFD locks), which
// recent macOS SDKs define: QEMU's lock then fails against our flock ("Failed to lock byte 100")
// and every boot fails. locking=off leaves our flock as the guard against a second luksmount.
// Linux keeps auto: flock and OFD locks are separate there and the disk is handed over as an fd.
func diskLockingOption(hostOS string) string {
	if hostOS == "darwin" {
		return "off"
	}
	return ""
}

// gicNCPU is the most vCPUs a GICv2 can address (QEMU GIC_NCPU).
const gicNCPU = 8

// virtGICOption is the -M virt suffix for cpus vCPUs. GICv2 addresses at most 8 CPUs; QEMU picks
// GICv3 itself above that only since its finalize_gic_version rework (hw/arm/virt.c, 7.x), so ask
// for it explicitly: TCG and HVF both emulate a GICv3 in user space (gics_supported gets
// VIRT_GIC_VERSION_3 when the arm-gicv3 class exists).
func virtGICOption(cpus int) string {
	if cpus > gicNCPU {
		return ",gic-version=3"
	}
	return ""
}

// RunAs asks QEMU to drop root itself: -run-with user=UID:GID (QEMU 9.1+, which deprecated
// -runas). QEMU opens everything on its command line as root, including the disk, and calls
// setgid, setgroups(1, [gid]) and setuid just before the guest starts (os-posix.c
// change_process_uid from os_setup_post, the last step of system/vl.c qemu_init), then checks that
// setuid(0) fails. This is how QEMU runs unprivileged on macOS, where the Linux way (exec as the
// user with the disk passed as an open fd) cannot work: see DiskFDWorks.
type RunAs struct{ UID, GID uint32 }

// MinRunWithUserVersion is the first QEMU with -run-with user=.
var MinRunWithUserVersion = Version{9, 1, 0}

func (r *RunAs) args() []string {
	if r == nil {
		return nil
	}
	return []string{"-run-with", "user=" + strconv.FormatUint(uint64(r.UID), 10) + ":" + strconv.FormatUint(uint64(r.GID), 10)}
}

func (r *RunAs) validate() error {
	if r != nil && r.UID == 0 {
		return errors.New("run-as uid 0 drops nothing")
	}
	return nil
}

// DiskFDWorks reports whether QEMU can take this disk as an inherited descriptor (-add-fd and
// /dev/fdset/N) on hostOS.
//
// Not for devices on macOS: QEMU's /dev/fdset open dups the fd and always calls fcntl(F_SETFL)
// on the copy (util/osdep.c qemu_dup_flags, from monitor/fds.c monitor_fdset_dup_fd_add). xnu's
// F_SETFL issues FIONBIO and FIOASYNC to the file and fails with their error (bsd/kern/kern_descrip.c
// fcntl_nocancel F_SETFL); for a character device vn_ioctl passes them to the driver
// (bsd/vfs/vfs_vnops.c, spec_ioctl), and the disk driver answers every unknown ioctl ENOTTY
// (IOStorageFamily IOMediaBSDClient.cpp dkioctl -> IOMediaBSDClient::ioctl). Regular files are
// fine: vn_ioctl accepts FIONBIO/FIOASYNC on VREG. No open flag avoids the F_SETFL, and
// /dev/fd/N is no way round it: xnu authorizes that open against the underlying node's owner and
// mode (devfs_fdesc_support.c fdesc_attr, then vn_open_auth -> vn_authorize_open_existing), which
// root:operator 0640 /dev/rdisk* refuses to the user.
func DiskFDWorks(hostOS string, hostDevice bool) bool {
	return !(hostOS == "darwin" && hostDevice)
}

// Version is a QEMU version.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

var versionRE = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion reads `qemu-system-* --version` output ("QEMU emulator version 10.1.2 (...)").
func ParseVersion(out string) (Version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("cannot find a QEMU version in %q", firstLine(out))
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
