package diskutil

import (
	"errors"
	"fmt"
	"strings"

	"github.com/luksmount/luksmount/host/blockdev"
)

// Mount is one entry of the kernel's mount table (getfsstat: f_mntfromname, f_mntonname).
type Mount struct{ From, On string }

// ErrMountStateUnknown means neither the kernel's mount table nor diskutil could say whether a
// partition is mounted.
var ErrMountStateUnknown = errors.New("cannot tell whether macOS has it mounted")

// MountedOn returns where name (a BSD name such as disk4s1, or a whole disk such as disk4, then
// any of its slices) is mounted according to the kernel's table, or "".
func MountedOn(mounts []Mount, name string) (from, on string) {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "/dev/"), "r")
	whole := !strings.Contains(strings.TrimPrefix(name, "disk"), "s")
	for _, m := range mounts {
		dev := strings.TrimPrefix(m.From, "/dev/")
		if dev == name || (whole && strings.HasPrefix(dev, name+"s")) {
			return m.From, m.On
		}
	}
	return "", ""
}

// MountState decides whether the partition name is mounted, from the kernel's table (mounts, or
// the error getfsstat gave) and diskutil's view (info, or the error diskutil gave). Mounted if
// either says so. The kernel's table alone settles "not mounted": every mount is in it, by device
// node. If neither source answered, the state is unknown and the caller must refuse: on macOS
// nothing else stops a raw read-write open of a mounted partition (dkopen does not check for a
// mounted filesystem, and there is no O_EXCL claim as on Linux).
func MountState(name string, mounts []Mount, mountsErr error, info *Info, infoErr error) (mountedOn string, err error) {
	if mountsErr == nil {
		if from, on := MountedOn(mounts, name); on != "" {
			return fmt.Sprintf("%s (%s)", on, strings.TrimPrefix(from, "/dev/")), nil
		}
	}
	if infoErr == nil && info != nil && info.MountPoint != "" {
		return info.MountPoint, nil
	}
	if mountsErr != nil && (infoErr != nil || info == nil) {
		return "", fmt.Errorf("%w: the mount table (%v) and diskutil (%v) both failed", ErrMountStateUnknown, mountsErr, infoErr)
	}
	return "", nil
}

// CheckNotMounted turns MountState into the refusal the user sees: what is mounted where (or
// that nobody could tell) and the command that frees the disk. name is what luksmount opens
// (rdisk4s1 or disk4s1).
func CheckNotMounted(name string, mounts []Mount, mountsErr error, info *Info, infoErr error) error {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "/dev/"), "r")
	whole := blockdev.WholeDiskName(name)
	on, err := MountState(name, mounts, mountsErr, info, infoErr)
	if err != nil {
		return fmt.Errorf("%s: %w; luksmount will not hand it to the VM (a VM writing under a mounted file system corrupts it): check `diskutil info %s`, run `diskutil unmountDisk %s`, then retry", name, err, name, whole)
	}
	if on != "" {
		return fmt.Errorf("macOS has %s mounted at %s: %w; run `diskutil unmountDisk %s` first", name, on, blockdev.ErrInUse, whole)
	}
	return nil
}

// SiblingWarning says, for a partition luksmount is about to hand to the VM, which other volumes
// of the same disk macOS has mounted: Finder's Eject of any of them ejects the whole disk,
// this partition included, under the running VM (anylinuxfs-gui #4). "" when there are none.
// DiskArbitration's dissent callback would stop such an eject, but needs cgo; this build has
// none, so the user is told what to use instead, and a disk that vanishes anyway ends the
// session as drive-lost with everything fsync'd safe.
func SiblingWarning(name string, mounts []Mount) string {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "/dev/"), "r")
	whole := blockdev.WholeDiskName(name)
	if whole == "" || whole == name {
		return ""
	}
	var on []string
	for _, m := range mounts {
		dev := strings.TrimPrefix(m.From, "/dev/")
		if dev != name && strings.HasPrefix(dev, whole+"s") {
			on = append(on, m.On)
		}
	}
	if len(on) == 0 {
		return ""
	}
	return fmt.Sprintf("%s also holds %s, mounted by macOS: ejecting it in Finder ejects all of %s, %s included, under the running VM; unmount it with `diskutil unmount %s` instead of Eject",
		whole, strings.Join(on, ", "), whole, name, on[0])
}
