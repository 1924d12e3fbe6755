//go:build linux

// Package guestinit is the benchmark's part of its two inits (PID 1 of the NFS client VM and of
// the kernel nfsd VM): guestspec lines stamped with uptime, the bench config, cache dropping,
// memory use and the stop port. Booting, the results port, networking and power-off are
// test/clientvm/guestkit's, shared with the test's client VM.
package guestinit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/guest/channel"
	"github.com/luksmount/luksmount/guest/netconf"
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

// ServerNetwork is the server guests' (nfsd and net modes) network: the agent's static
// 192.168.127.2/24 via .1, which host/vnet serves and the bench's QEMU user network copies, so
// the same guest runs behind either path.
func ServerNetwork() error {
	if err := netconf.Loopback(); err != nil {
		return err
	}
	return netconf.Configure(netconf.Default(), 2*time.Second)
}

// StreamServer serves guestspec.StreamPort until the process ends.
func StreamServer() error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(guestspec.StreamPort))
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go ServeStream(c)
		}
	}()
	return nil
}

// ServeStream serves one stream connection (see guestspec.StreamPort).
func ServeStream(c net.Conn) {
	defer c.Close()
	var cmd [9]byte
	if _, err := io.ReadFull(c, cmd[:1]); err != nil {
		return
	}
	buf := make([]byte, 256<<10)
	switch cmd[0] {
	case 'W':
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
		c.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	case 'R':
		if _, err := io.ReadFull(c, cmd[1:]); err != nil {
			return
		}
		for left := int64(binary.BigEndian.Uint64(cmd[1:])); left > 0; {
			n, err := c.Write(buf[:min(left, int64(len(buf)))])
			if err != nil {
				return
			}
			left -= int64(n)
		}
	}
}

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
