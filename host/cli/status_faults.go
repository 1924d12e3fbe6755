package cli

import (
	"fmt"
	"io"

	"github.com/luksmount/luksmount/host/session"
)

// writeFaults prints, under the status table, what went wrong in each session that has a fault.
func writeFaults(w io.Writer, sts []session.State) {
	for _, s := range sts {
		if s.Fault != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Target, s.Fault)
		}
	}
}
