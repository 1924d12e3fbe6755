package initramfs

import (
	"slices"
	"testing"
)

// Every filesystem `format --fs` offers must have its modules and its mkfs in the agent image.
func TestAgentShipsEveryFilesystem(t *testing.T) {
	v := Variants["agent"]
	mkfs := map[string]string{"ext4": "/sbin/mkfs.ext4", "btrfs": "/sbin/mkfs.btrfs", "xfs": "/sbin/mkfs.xfs",
		"exfat": "/usr/sbin/mkfs.exfat", "vfat": "/sbin/mkfs.fat", "ntfs": "/sbin/mkntfs"}
	for fs, bin := range mkfs {
		if _, ok := v.OnDemand["fs-"+fs]; !ok {
			t.Errorf("no on-demand entry fs-%s", fs)
		}
		if !slices.Contains(v.Binaries, bin) {
			t.Errorf("%s is not in the agent image", bin)
		}
	}
	for _, b := range []string{"/bin/ntfs-3g", "/sbin/xfs_repair", "/bin/btrfs", "/sbin/fsck.fat", "/usr/sbin/fsck.exfat", "/bin/ntfsfix"} {
		if !slices.Contains(v.Binaries, b) {
			t.Errorf("%s (NTFS driver, or a checker `luksmount check` runs) is not in the agent image", b)
		}
	}
	for k := range cryptoOnDemand {
		if _, ok := v.OnDemand[k]; !ok {
			t.Errorf("crypto entry %s lost when merging the filesystem table", k)
		}
	}
}
