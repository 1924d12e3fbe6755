package cli

import (
	"fmt"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/version"
)

func (e *env) versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *ucli.Context) error {
			fmt.Fprintf(e.stdout, "luksmount %s (%s/%s, %s, control protocol %d)\n", version.String(), runtime.GOOS, runtime.GOARCH,
				runtime.Version(), control.ProtocolVersion)
			return nil
		},
	}
}
