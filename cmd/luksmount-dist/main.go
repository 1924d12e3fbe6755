// Command luksmount-dist writes luksmount's release archives, SHA256SUMS and Homebrew formula
// (`make dist`). See package packaging/dist.
package main

import (
	"fmt"
	"os"

	"github.com/luksmount/luksmount/packaging/dist"
)

func main() {
	if err := dist.Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "luksmount-dist: %v\n", err)
		os.Exit(1)
	}
}
