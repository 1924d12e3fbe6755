package fsops

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// Filesystems `luksmount format --fs` makes, by the name the user types (blkid's TYPE).
var Filesystems = []string{"ext4", "btrfs", "xfs", "exfat", "vfat", "ntfs"}

// labelLimit is each filesystem's longest label, in bytes (FAT: 11 characters of its code
// page, kept to ASCII here; exFAT: 11 UTF-16 units; NTFS: 128 UTF-16 units).
var labelLimit = map[string]int{"ext4": 16, "btrfs": 255, "xfs": 12, "exfat": 11, "vfat": 11, "ntfs": 128}

// MkfsCmd builds the command that makes filesystem fs on dev ("" means ext4).
func MkfsCmd(fs, dev, label string) (command.Cmd, error) {
	if fs == "" {
		fs = "ext4"
	}
	limit, ok := labelLimit[fs]
	if !ok {
		return command.Cmd{}, control.Errorf(control.CodeInvalidArgument, "cannot format as %q: choose one of %s", fs, strings.Join(Filesystems, ", "))
	}
	n := len(label)
	if fs == "exfat" || fs == "ntfs" {
		n = utf8.RuneCountInString(label)
	}
	if n > limit || strings.ContainsAny(label, "\x00\n/") || fs == "vfat" && !isFATLabel(label) {
		what := "at most " + itoa(limit) + " bytes"
		if fs == "vfat" {
			what = "at most 11 ASCII letters, digits, spaces and !#$%&'()-@^_`{}~"
		} else if fs == "exfat" || fs == "ntfs" {
			what = "at most " + itoa(limit) + " characters"
		}
		return command.Cmd{}, control.Errorf(control.CodeInvalidArgument, "%s label %q is too long or has bad characters (%s)", fs, label, what)
	}
	var c command.Cmd
	switch fs {
	case "ext4":
		args, err := MkfsArgs(dev, label)
		if err != nil {
			return c, err
		}
		return command.Cmd{Name: "mkfs.ext4", Args: args}, nil
	case "btrfs":
		c = command.Cmd{Name: "mkfs.btrfs", Args: []string{"-f"}}
		if label != "" {
			c.Args = append(c.Args, "-L", label)
		}
	case "xfs":
		c = command.Cmd{Name: "mkfs.xfs", Args: []string{"-f"}}
		if label != "" {
			c.Args = append(c.Args, "-L", label)
		}
	case "exfat":
		c = command.Cmd{Name: "mkfs.exfat"}
		if label != "" {
			c.Args = append(c.Args, "-L", label)
		}
	case "vfat":
		// -I: the whole device, no partition table (what a Mac sees as the volume); mkfs.fat
		// picks FAT12, 16 or 32 by size, as Windows does.
		c = command.Cmd{Name: "mkfs.fat", Args: []string{"-I"}}
		if label != "" {
			c.Args = append(c.Args, "-n", strings.ToUpper(label))
		}
	case "ntfs":
		// -Q: no zeroing pass (hours on a big drive); -F: a whole device or image file.
		c = command.Cmd{Name: "mkntfs", Args: []string{"-Q", "-F"}}
		if label != "" {
			c.Args = append(c.Args, "-L", label)
		}
	}
	c.Args = append(c.Args, dev)
	return c, nil
}

func isFATLabel(l string) bool {
	for _, r := range l {
		if r > 0x7e || r < 0x20 || strings.ContainsRune(`"*+,./:;<=>?[\]|`, r) {
			return false
		}
	}
	return true
}

func itoa(n int) string { return strconv.Itoa(n) }

// MkfsAny creates filesystem fs on dev with the runner given (which may show progress).
func MkfsAny(ctx context.Context, run command.Runner, fs, dev, label string) error {
	c, err := MkfsCmd(fs, dev, label)
	if err != nil {
		return err
	}
	r, err := run.Run(ctx, c)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run %s: %v", c.Name, err)
	}
	if r.ExitCode != 0 {
		low := strings.ToLower(r.Stderr + r.Stdout)
		code := control.CodeInternal
		switch {
		case strings.Contains(low, "input/output error"):
			code = control.CodeIOError
		case strings.Contains(low, "in use") || strings.Contains(low, "busy"):
			code = control.CodeDeviceBusy
		case strings.Contains(low, "too small") || strings.Contains(low, "smaller than") || strings.Contains(low, "must be larger"):
			code = control.CodeInvalidArgument
		}
		ce := control.Errorf(code, "cannot create %s on %s: %s exited with %d", fsOrExt4(fs), dev, c.Name, r.ExitCode)
		ce.Detail = strings.TrimSpace(r.Stderr + "\n" + r.Stdout)
		if code == control.CodeInvalidArgument {
			ce.Message += " (the device is too small for " + fsOrExt4(fs) + ")"
		}
		return ce
	}
	return nil
}

func fsOrExt4(fs string) string {
	if fs == "" {
		return "ext4"
	}
	return fs
}
