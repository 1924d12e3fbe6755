package cli

import (
	"path/filepath"

	ucli "github.com/urfave/cli/v2"
)

// headerFlag is --header: a detached LUKS header (`cryptsetup luksFormat --header FILE TARGET`, or
// a header backup). The file is only read: the VM gets it as a read-only disk.
func headerFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "header", Usage: "the drive's LUKS header is detached, in `FILE` (made with `cryptsetup luksFormat --header`, or a luksHeaderBackup); it is only read", Category: "mount"}
}

// headerPath is --header made absolute (the detached supervisor may run elsewhere), or "".
func headerPath(c *ucli.Context) (string, error) {
	p := c.String("header")
	if p == "" {
		if c.IsSet("header") {
			return "", usagef("--header needs a FILE: the detached LUKS header")
		}
		return "", nil
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p, nil
}

func noCategory(f *ucli.StringFlag) *ucli.StringFlag {
	f.Category = ""
	return f
}
