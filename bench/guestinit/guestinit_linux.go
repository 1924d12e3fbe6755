//go:build linux

// Package guestinit is what both benchmark inits (PID 1 of the NFS client VM and of the kernel
// nfsd VM) do around their job: base mounts, modules, the results port, networking on QEMU user
// networking, cache dropping, memory use, and powering off.
package guestinit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/guest/channel"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Reporter writes guestspec Lines to the results port and the console.
type Reporter struct{ out *os.File }

// Line writes one line, stamping uptime.
func (r *Reporter) Line(l guestspec.Line) {
	l.Uptime = Uptime()
	b, _ := json.Marshal(l)
	b = append(b, '\n')
	if r.out != nil {
		r.out.Write(b)
	}
	os.Stderr.Write(b)
}

// Step reports a finished step that started at t0.
func (r *Reporter) Step(name string, t0 time.Time) {
	r.Line(guestspec.Line{Kind: "step", Step: name, Seconds: time.Since(t0).Seconds()})
}

// Boot does the base mounts and module loading, opens the results port and reads the config.
func Boot() (*Reporter, guestspec.Config, error) {
	r := &Reporter{}
	t0 := time.Now()
	if err := initsys.MountBase(); err != nil {
		return r, guestspec.Config{}, fmt.Errorf("base mounts: %w", err)
	}
	if p, err := channel.FindPort("/sys/class/virtio-ports", guestspec.ResultsPort); err == nil {
		r.out, _ = os.OpenFile(p, os.O_WRONLY, 0)
	}
	r.Step("init", t0)
	t := time.Now()
	if f, err := os.Open(initsys.ModulesFile); err == nil {
		paths, _ := initsys.ParseModules(f)
		f.Close()
		for _, m := range initsys.LoadModules(paths) {
			if m.Err != nil {
				fmt.Fprintf(os.Stderr, "module %s: %v\n", m.Path, m.Err)
			}
		}
	}
	// The results port may only appear once virtio_console is loaded.
	if r.out == nil {
		if p, err := channel.FindPort("/sys/class/virtio-ports", guestspec.ResultsPort); err == nil {
			r.out, _ = os.OpenFile(p, os.O_WRONLY, 0)
		}
	}
	r.Step("modules", t)
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
	initsys.Sync()
	if r.out != nil {
		r.out.Sync()
	}
	time.Sleep(200 * time.Millisecond) // let the port drain before the power goes
	initsys.PowerOff()
	select {}
}

// Network configures QEMU user networking's fixed addresses: 10.0.2.15/24 via 10.0.2.2.
func Network() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	var eth netlink.Link
	for i := 0; i < 100; i++ {
		if eth, err = netlink.LinkByName("eth0"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("no eth0: %w", err)
	}
	addr, _ := netlink.ParseAddr("10.0.2.15/24")
	if err := netlink.AddrAdd(eth, addr); err != nil && !strings.Contains(err.Error(), "exists") {
		return err
	}
	if err := netlink.LinkSetUp(eth); err != nil {
		return err
	}
	return netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP("10.0.2.2")})
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
