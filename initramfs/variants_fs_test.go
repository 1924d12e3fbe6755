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
	if !slices.Contains(v.Binaries, "/bin/ntfs-3g") {
		t.Error("ntfs-3g (the NTFS driver) is not in the agent image")
	}
	for k := range cryptoOnDemand {
		if _, ok := v.OnDemand[k]; !ok {
			t.Errorf("crypto entry %s lost when merging the filesystem table", k)
		}
	}
}
