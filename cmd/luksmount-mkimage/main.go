// Command luksmount-mkimage builds the guest kernel+initramfs images from pinned Debian packages
// and maintains the package lock. See package initramfs.
package main

import (
	"fmt"
	"os"

	"github.com/luksmount/luksmount/initramfs"
)

func main() {
	if err := initramfs.Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "luksmount-mkimage: %v\n", err)
		os.Exit(1)
	}
}
