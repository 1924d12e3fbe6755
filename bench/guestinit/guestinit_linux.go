//go:build linux

// Package guestinit is the benchmark's part of its two inits (PID 1 of the NFS client VM and of
// the kernel nfsd VM): guestspec lines stamped with uptime, the bench config, cache dropping,
// memory use and the stop port. Booting, the results port, networking and power-off are
// test/clientvm/guestkit's, shared with the test's client VM.
package guestinit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/guest/channel"
	"github.com/luksmount/luksmount/test/clientvm/guestkit"
	"golang.org/x/sys/unix"
)

// Reporter writes guestspec Lines to the results port and the console.
type Reporter struct{ port *guestkit.Port }

// Line writes one line, stamping uptime.
func (r *Reporter) Line(l guestspec.Line) {
	l.Uptime = Uptime()
	r.port.Write(l)
}

// Step reports a finished step that started at t0.
func (r *Reporter) Step(name string, t0 time.Time) {
	r.Line(guestspec.Line{Kind: "step", Step: name, Seconds: time.Since(t0).Seconds()})
}

// Boot does the base mounts and module loading (test/clientvm/guestkit), opens the results port
// and reads the config.
func Boot() (*Reporter, guestspec.Config, error) {
	t0 := time.Now()
	port, err := guestkit.Boot(guestspec.ResultsPort)
	r := &Reporter{port: port}
	if err != nil {
		return r, guestspec.Config{}, err
	}
	r.Step("boot", t0)
	var cfg guestspec.Config
	b, err := os.ReadFile(guestspec.ConfigPath)
	if err != nil {
		return r, cfg, fmt.Errorf("no bench config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return r, cfg, fmt.Errorf("bad bench config: %w", err)
	}
	return r, cfg, nil
}

// Finish reports err (if any), syncs and powers off.
func (r *Reporter) Finish(err error) {
	if err != nil {
		r.Line(guestspec.Line{Kind: "error", Error: err.Error()})
	} else {
		r.Line(guestspec.Line{Kind: "done"})
	}
	r.port.PowerOff()
}

// Network configures QEMU user networking's fixed addresses: 10.0.2.15/24 via 10.0.2.2.
func Network() error { return guestkit.Network() }

// DropCaches writes back dirty data and empties the page, dentry and inode caches.
func DropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// Uptime is /proc/uptime's first field.
func Uptime() float64 {
	b, _ := os.ReadFile("/proc/uptime")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// MemUsedKiB is MemTotal - MemAvailable.
func MemUsedKiB() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	var total, avail int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	return total - avail
}

// WaitStop blocks until the host writes to the stop port (or it cannot be read).
func WaitStop() error {
	p, err := channel.FindPort("/sys/class/virtio-ports", guestspec.StopPort)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			return nil
		}
		if err != nil {
			// No host connected yet reads as EOF: wait and retry.
			time.Sleep(200 * time.Millisecond)
		}
	}
}
