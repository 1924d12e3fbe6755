package initramfs

// Filesystems beyond ext2/3/4 (built into the kernel). Their modules ship in the agent image but
// load only when the drive holds that filesystem; their mkfs tools serve `luksmount format --fs`.
//
// NTFS: Debian 12 builds neither kernel flavour (cloud or generic) with ntfs3
// (CONFIG_NTFS3_FS is not set in 6.1.0-5x), so NTFS is served through ntfs-3g, Debian's own
// NTFS driver, on FUSE (the cloud kernel has fuse as a module).

// fsOnDemand are the on-demand module sets per filesystem, keyed "fs-" + blkid's TYPE.
var fsOnDemand = map[string][]string{
	"fs-ext2": {}, "fs-ext3": {}, "fs-ext4": {}, // built in
	"fs-btrfs": {"btrfs"},
	"fs-xfs":   {"xfs"},
	"fs-vfat":  {"vfat", "nls_cp437", "nls_ascii", "nls_utf8"}, // codepage 437 and iocharset ascii: the kernel's FAT defaults
	"fs-exfat": {"exfat", "nls_utf8"},
	"fs-ntfs":  {"fuse"},
}

// fsPackages hold the mkfs tools and the NTFS driver.
var fsPackages = []string{"btrfs-progs", "xfsprogs", "exfatprogs", "dosfstools", "ntfs-3g"}

// fsBinaries are the mkfs tools, ntfs-3g, and the checkers `luksmount check` runs (xfs_repair,
// btrfs check, fsck.fat, fsck.exfat, ntfsfix -n); paths as Debian 12 installs them.
var fsBinaries = []string{"/sbin/mkfs.btrfs", "/sbin/mkfs.xfs", "/usr/sbin/mkfs.exfat", "/sbin/mkfs.fat", "/sbin/mkntfs", "/bin/ntfs-3g",
	"/sbin/xfs_repair", "/bin/btrfs", "/sbin/fsck.fat", "/usr/sbin/fsck.exfat", "/bin/ntfsfix"}
