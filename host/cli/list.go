package cli

import (
	ucli "github.com/urfave/cli/v2"
)

func (e *env) listCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "list",
		Usage: "list disks and partitions that hold LUKS or Linux filesystems",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *ucli.Context) error {
			return listDisks(c.Context, e.stdout, c.Bool("json"))
		},
	}
}
