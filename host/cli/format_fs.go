package cli

import (
	"strings"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v2"
)

var fsFlag = &ucli.StringFlag{Name: "fs", Value: "ext4", Usage: "filesystem: ext4, btrfs, xfs (at least 300M), exfat, vfat (FAT12/16/32 by size) or ntfs"}

// fsLabels are each filesystem's longest label (bytes; characters for exFAT and NTFS), checked
// here so a bad label fails before the VM boots (the guest checks again).
var fsLabels = map[string]int{"ext4": 16, "btrfs": 255, "xfs": 12, "exfat": 11, "vfat": 11, "ntfs": 128}

// formatFS checks --fs (fat and msdos mean vfat) and the label's length for it.
func formatFS(fs, label string) (string, error) {
	fs = strings.ToLower(fs)
	switch fs {
	case "fat", "msdos":
		fs = "vfat"
	}
	limit, ok := fsLabels[fs]
	if !ok {
		return "", usagef("--fs %q is unknown: use ext4, btrfs, xfs, exfat, vfat or ntfs", fs)
	}
	n, unit := len(label), "bytes"
	if fs == "exfat" || fs == "ntfs" {
		n, unit = utf8.RuneCountInString(label), "characters"
	}
	if n > limit {
		return "", usagef("--label %q is longer than %s's %d %s", label, fs, limit, unit)
	}
	if fs == "ext4" {
		return "", nil // the default: older agents know no fs field
	}
	return fs, nil
}

func fsOrDefault(fs string) string {
	if fs == "" {
		return "ext4"
	}
	return fs
}
