package cli

import (
	ucli "github.com/urfave/cli/v2"
)

// headerFlag is --header: a detached LUKS header (`cryptsetup luksFormat --header FILE TARGET`, or
// a header backup). The file is only read: the VM gets it as a read-only disk.
func headerFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "header", Usage: "the drive's LUKS header is detached, in `FILE` (made with `cryptsetup luksFormat --header`, or a luksHeaderBackup); it is only read", Category: "mount"}
}

// headerPath is --header as a target is spelled (a path made absolute for the detached
// supervisor; a bare disk name such as disk5s1 kept for blockdev to resolve), or "".
func headerPath(c *ucli.Context) (string, error) {
	p := c.String("header")
	if p == "" && c.IsSet("header") {
		return "", usagef("--header needs a FILE: the detached LUKS header")
	}
	return absTarget(p), nil
}

func noCategory(f *ucli.StringFlag) *ucli.StringFlag {
	f.Category = ""
	return f
}
