package agent

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// ParseMeminfo reads MemTotal and MemAvailable (KiB) from /proc/meminfo.
func ParseMeminfo(r io.Reader) (totalKiB, availKiB int64) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			totalKiB = n
		case "MemAvailable:":
			availKiB = n
		}
	}
	return totalKiB, availKiB
}
