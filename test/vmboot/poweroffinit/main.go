//go:build linux

// Command poweroffinit is PID 1 of the power-off loop test's VM (test/vmboot TestPowerOffUnderTraffic):
// on the agent image's kernel and modules it brings up eth0 on QEMU's user network, keeps light
// traffic going with the test (a TCP ping-pong with 10.0.2.2:lmtest.port, small UDP datagrams to
// lmtest.udpport), and powers off while it flows. lmtest.poweroff=agent powers off as the agent
// does (initsys.PowerOff); =raw calls reboot(2) with the interface still up, as the agent did
// before initsys.QuiesceNetwork.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/guest/netconf"
	"golang.org/x/sys/unix"
)

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "POWEROFF-TEST "+format+"\n", args...) }

func main() {
	defer func() { // whatever happens, end the VM
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}()
	if err := initsys.MountBase(); err != nil {
		say("error %v", err)
	}
	args := cmdline()
	if f, err := os.Open(initsys.ModulesFile); err == nil {
		paths, _ := initsys.ParseModules(f)
		f.Close()
		initsys.LoadModules(paths)
	}
	netconf.Loopback()
	if err := netconf.Configure(netconf.UserNet(), 10*time.Second); err != nil {
		say("error %v", err)
		return
	}
	// Light traffic is what hangs: a transmit (or a TX clean-up pass) after the break, with the
	// device having completed buffers the driver has not reclaimed yet. Streams at full speed
	// keep the TX queue stopped (ring full), which hides it. So: a TCP echo ping-pong, and small
	// UDP datagrams at a steady rate.
	gw := netconf.UserNet().Gateway.String()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(gw, args["lmtest.port"]), 10*time.Second)
	if err != nil {
		say("error %v", err)
		return
	}
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 2; i++ {
		u, err := net.Dial("udp", net.JoinHostPort(gw, args["lmtest.udpport"]))
		if err != nil {
			say("error %v", err)
			return
		}
		go func() {
			buf := make([]byte, 200)
			for {
				u.Write(buf)
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	conns := 3
	time.Sleep(500 * time.Millisecond) // both directions at full speed
	say("traffic %d connections", conns)
	if args["lmtest.poweroff"] == "raw" {
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		return
	}
	if err := initsys.PowerOff(); err != nil {
		say("error %v", err)
	}
}

func cmdline() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	m := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
