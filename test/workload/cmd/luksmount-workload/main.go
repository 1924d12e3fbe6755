// Command luksmount-workload runs the checked filesystem workload of luksmount's end-to-end tests
// against a directory, typically the VM's NFS mount of the export:
//
//	luksmount-workload -dir /mnt/nfs -run 'files|rename' -json
package main

import (
	"fmt"
	"os"

	"github.com/luksmount/luksmount/test/workload"
)

func main() {
	if err := workload.Main(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if code := workload.ExitCode(err); code != 0 {
			fmt.Fprintln(os.Stderr, "luksmount-workload:", err)
			os.Exit(code)
		}
	}
}
