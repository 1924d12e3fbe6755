package supervisor

import (
	"context"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/diskutil"
)

func canMountNFS() (bool, string) { return true, "" }

// checkNotMounted refuses a partition macOS has mounted, or whose mount state neither the kernel's
// mount table nor diskutil can establish: the VM writing under a mounted filesystem would corrupt
// it, and darwin has no exclusive open that would stop it (see diskutil.MountState).
func checkNotMounted(dev *blockdev.Device) error {
	if dev.IsImage {
		return nil
	}
	name := strings.TrimPrefix(strings.TrimPrefix(dev.Path, "/dev/"), "r")
	mounts, mountsErr := diskutil.KernelMounts()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	info, infoErr := diskutil.New().Info(ctx, name)
	return diskutil.CheckNotMounted(name, mounts, mountsErr, info, infoErr)
}

// siblingWarning names the other volumes of dev's disk that macOS has mounted (finding 6 of the
// macOS review: Finder's Eject of one ejects the whole disk under the VM).
func siblingWarning(dev *blockdev.Device) string {
	if dev.IsImage {
		return ""
	}
	mounts, err := diskutil.KernelMounts()
	if err != nil {
		return ""
	}
	return diskutil.SiblingWarning(dev.Path, mounts)
}
