package agent

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/timeline"
)

// ProfileFlag on the kernel command line (luksmount.pprof=PORT) makes the agent serve its own
// profiles on that guest TCP port. Only `make bench` sets it (speed work reads the profiles it
// saves in build/bench/); host/vnet passes the port's replies only when the host asks for it.
//
// One connection, one request line: "cpu" streams a CPU profile covering the time until the
// host half-closes its side; "heap" writes a heap profile. Raw TCP rather than net/http/pprof
// keeps net/http out of the agent.
const ProfileFlag = "luksmount.pprof"

// ServeProfiles listens on port until the process ends (errors are logged, never fatal).
func ServeProfiles(port string, tl *timeline.Recorder) {
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		tl.Logf("warn", "%s=%q is not a port: no profiles", ProfileFlag, port)
		return
	}
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		tl.Logf("warn", "profiles: %v", err)
		return
	}
	tl.Logf("info", "serving CPU and heap profiles on port %d (bench)", p)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveProfile(c, tl)
		}
	}()
}

func serveProfile(c net.Conn, tl *timeline.Recorder) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	switch strings.TrimSpace(line) {
	case "cpu":
		if err := pprof.StartCPUProfile(c); err != nil {
			tl.Logf("warn", "cpu profile: %v", err)
			return
		}
		io.Copy(io.Discard, r) // until the host half-closes
		pprof.StopCPUProfile()
	case "heap":
		runtime.GC()
		pprof.WriteHeapProfile(c)
	}
}
