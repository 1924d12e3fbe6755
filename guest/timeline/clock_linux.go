package timeline

import "golang.org/x/sys/unix"

// BootTime returns CLOCK_BOOTTIME in seconds: time since the kernel started, suspend included.
func BootTime() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
