// Command luksmount-bench is `make bench`: see package bench/suite.
package main

import (
	"fmt"
	"os"

	"github.com/luksmount/luksmount/bench/suite"
)

func main() {
	if err := suite.Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "luksmount-bench:", err)
		os.Exit(1)
	}
}
