// Command luksmount-workload runs the checked filesystem workload of luksmount's end-to-end tests
// against a directory, typically the VM's NFS mount of the export:
//
//	luksmount-workload -dir /mnt/nfs -run 'files|rename' -json
//
// With -json, stdout holds one JSON object per scenario, {"name","ok","skipped","duration_ms","error",
// "details"}, then the line "N passed, N failed, N skipped"; workload.ParseReport reads it. The seed
// and progress go to stderr. Exit status: 0 all passed or skipped, 1 a scenario failed or timed out,
// 2 bad flags or an unusable -dir. -list names the scenarios.
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
