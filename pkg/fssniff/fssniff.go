// Package fssniff names the filesystem at the start of a device from its documented magic
// (blkid's names), so the host knows before booting that the guest can mount a drive that is
// neither LUKS nor ext2/3/4.
package fssniff

import (
	"bytes"
	"io"
)

// Type returns "btrfs", "xfs", "exfat", "vfat", "ntfs" or "" (none of these).
func Type(r io.ReaderAt) string {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err == nil {
		switch {
		case string(b[0:4]) == "XFSB": // xfs_sb sb_magicnum
			return "xfs"
		case string(b[3:11]) == "EXFAT   ": // exFAT boot sector FileSystemName
			return "exfat"
		case string(b[3:11]) == "NTFS    ": // NTFS boot sector OEM ID
			return "ntfs"
		case b[510] == 0x55 && b[511] == 0xAA && (bytes.HasPrefix(b[0x36:], []byte("FAT1")) || bytes.HasPrefix(b[0x52:], []byte("FAT32"))):
			return "vfat" // BS_FilSysType of FAT12/16 (0x36) or FAT32 (0x52)
		}
	}
	sb := make([]byte, 8)
	if _, err := r.ReadAt(sb, 0x10040); err == nil && string(sb) == "_BHRfS_M" { // btrfs superblock at 64 KiB
		return "btrfs"
	}
	return ""
}
