//go:build !linux

// Command luksmount-benchinit is PID 1 of the benchmark's NFS client VM (Linux guest only).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "luksmount-benchinit runs only as PID 1 of the Linux benchmark VM")
	os.Exit(1)
}
