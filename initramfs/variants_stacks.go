package initramfs

// The agent image's storage-stack tools (trim, resize, LVM, mdadm RAID), referenced from
// variants.go. Their kernel modules are on demand: an ext4-on-LUKS boot loads none of them.

// stackPackages hold the tools: lvm2 (lvm), dmsetup, mdadm.
var stackPackages = []string{"lvm2", "dmsetup", "mdadm"}

// stackExclude are Depends the copied binaries never use: udev and dmeventd (the agent runs
// without udev and monitors nothing), their init scripts and mail for mdadm's monitor mode.
var stackExclude = []string{"udev", "dmeventd", "lsb-base"}

// stackBinaries are the stack tools copied into the agent image (fstrim is in util-linux).
var stackBinaries = []string{"/sbin/fstrim", "/sbin/lvm", "/sbin/dmsetup", "/sbin/mdadm"}

// stackModules are loaded on demand by feature: md RAID levels. LVM's linear and striped
// targets are in dm-mod, loaded at boot for dm-crypt.
var stackModules = map[string][]string{
	"raid0": {"raid0"}, "raid1": {"raid1"}, "raid10": {"raid10"},
	"raid4": {"raid456"}, "raid5": {"raid456"}, "raid6": {"raid456"},
	"md": {"md-mod"},
}
