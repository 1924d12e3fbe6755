package cli

import (
	ucli "github.com/urfave/cli/v2"
)

func (e *env) listCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "list",
		Usage:     "list drives (or the given devices and image files) holding LUKS, Linux filesystems, partition tables, LVM, RAID or BitLocker",
		ArgsUsage: "[DEVICE|IMAGE...]",
		Flags:     []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *ucli.Context) error {
			return listDisks(c.Context, e.stdout, c.Bool("json"), c.Args().Slice())
		},
	}
}
