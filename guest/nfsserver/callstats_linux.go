package nfsserver

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// callStats counts NFS calls and the server time they took, per procedure,
// for the summary logged when the server stops.
type callStats struct {
	n, ns [nfsProcs]atomic.Int64
}

func (c *callStats) add(proc uint32, start time.Time) {
	if proc < nfsProcs {
		d := time.Since(start)
		c.n[proc].Add(1)
		c.ns[proc].Add(int64(d))
	}
}

// String lists each procedure called: count and mean server time.
func (c *callStats) String() string {
	var b strings.Builder
	for i := range c.n {
		n := c.n[i].Load()
		if n == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d (%v)", procNames[i], n, time.Duration(c.ns[i].Load()/n).Round(time.Microsecond))
	}
	return b.String()
}
