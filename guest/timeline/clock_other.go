//go:build !linux

package timeline

import "time"

var start = time.Now()

// BootTime returns seconds since the process started (the agent only runs on Linux).
func BootTime() float64 { return time.Since(start).Seconds() }
