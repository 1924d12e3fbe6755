//go:build !linux

// Command luksmount-clientinit is PID 1 of the Linux test client VM; it has no use elsewhere.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "luksmount-clientinit runs only as PID 1 of the Linux test client VM")
	os.Exit(2)
}
