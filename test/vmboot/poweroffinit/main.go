//go:build linux

// Command poweroffinit is PID 1 of the power-off loop test's VM (test/vmboot TestPowerOffUnderTraffic):
// on the agent image's kernel and modules it brings up eth0 on QEMU's user network, keeps TCP
// traffic flowing both ways with the test (10.0.2.2:lmtest.port), and powers off while it flows.
// lmtest.poweroff=agent powers off as the agent does (initsys.PowerOff); =raw calls reboot(2)
// with the interface still up, as the agent did before QuiesceNetwork.
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
	addr := net.JoinHostPort(netconf.UserNet().Gateway.String(), args["lmtest.port"])
	conns := 0
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			say("error %v", err)
			return
		}
		conns++
		go io.Copy(io.Discard, c)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
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
