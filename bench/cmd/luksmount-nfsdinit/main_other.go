//go:build !linux

// Command luksmount-nfsdinit is PID 1 of the benchmark's kernel-nfsd VM (Linux guest only).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "luksmount-nfsdinit runs only as PID 1 of the Linux benchmark nfsd VM")
	os.Exit(1)
}
