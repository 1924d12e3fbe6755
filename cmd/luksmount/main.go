// Command luksmount mounts LUKS-encrypted and Linux filesystems on macOS and Linux through a small
// VM. See README.md.
package main

import (
	"os"

	"github.com/luksmount/luksmount/host/cli"
)

func main() {
	os.Exit(cli.Run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
