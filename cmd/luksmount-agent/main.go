// Command luksmount-agent is PID 1 of the luksmount guest VM: it unlocks, mounts and serves the
// drive for the host over the control channel (see guest/agent).
package main

import (
	"fmt"
	"os"

	"github.com/luksmount/luksmount/guest/agent"
)

func main() {
	if err := agent.Main(); err != nil {
		fmt.Fprintf(os.Stderr, "luksmount-agent: %v\n", err)
		os.Exit(1)
	}
}
