package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/channel"
	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/guest/netconf"
	"github.com/luksmount/luksmount/guest/nfsserver"
	"github.com/luksmount/luksmount/guest/timeline"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/version"
)

// WatchdogTimeout is how long the VM outlives its host before shutting itself down.
const WatchdogTimeout = 10 * time.Second

// Main is PID 1: it brings the guest up, serves the host and powers off. It returns only if it
// could not power off.
func Main() error {
	tl := timeline.New(nil)
	initStart := tl.Now()
	console := os.Stderr // the kernel's /dev/console
	debugOn := false
	tl.AddSink(func(ev control.Event) {
		if ev.Level == "debug" && !debugOn {
			return
		}
		fmt.Fprintln(console, "luksmount-agent: "+timeline.Format(ev))
	})
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(console, "luksmount-agent: fatal: %v\n%s", v, debug.Stack())
			initsys.Sync()
			initsys.PowerOff()
		}
	}()

	tl.StepAt("kernel", 0, initStart, "kernel booted")
	os.Setenv("PATH", command.Path)
	start := tl.Now()
	if err := initsys.MountBase(); err != nil {
		tl.Logf("error", "%v", err)
	}
	os.MkdirAll("/run/cryptsetup", 0o700)
	os.MkdirAll("/run/lock", 0o755)
	cmdline := readCmdline()
	debugOn = cmdline.Flag("luksmount.debug")
	tl.Step("init", start, "luksmount-agent %s: base filesystems mounted", version.String())

	var reaper initsys.Reaper
	ctx := context.Background()
	reaper.Start(ctx)

	start = tl.Now()
	later := loadBootModules(tl)
	tl.Step("modules", start, "kernel modules for the virtio devices loaded")
	modsReady := loadLaterModules(tl, later)

	start = tl.Now()
	if err := netconf.Loopback(); err != nil {
		tl.Logf("warn", "%v", err)
	}
	nc := netconf.Default()
	if err := netconf.Configure(nc, 300*time.Millisecond); err != nil {
		tl.Logf("warn", "network: %v (NFS will not be reachable)", err)
	} else {
		tl.Step("network", start, "%s %s via %s", nc.Interface, nc.Address, nc.Gateway)
	}
	if port, ok := cmdline.Values[ProfileFlag]; ok {
		ServeProfiles(port, tl)
	}

	exe := &command.Exec{Guard: &reaper.Guard}
	if debugOn {
		exe.Debugf = func(format string, args ...any) { tl.Logf("debug", format, args...) }
	}
	deps := linuxDeps(exe)
	deps.Features = onDemandModules(tl).Need
	deps = afterModules(deps, modsReady)
	a := New(deps, tl)
	sessions := NewSessions()

	// Signals and the power button stop the VM cleanly; nobody is there to answer a busy
	// filesystem, so the shutdown is forced (after syncing and the unmount retries).
	sig := initsys.ShutdownSignals()
	go func() {
		s := <-sig
		a.ShutdownAndPowerOff("received "+s.String(), true)
	}()
	if n := initsys.WatchPowerButton(func() { a.ShutdownAndPowerOff("power button pressed", true) }); n == 0 {
		tl.Logf("debug", "no input devices: the power button is not watched")
	}
	if !cmdline.Has("luksmount.watchdog") || cmdline.Flag("luksmount.watchdog") {
		go a.Watchdog(ctx, sessions, WatchdogTimeout)
	}

	go a.WatchFaults(ctx, LinuxFaultSource(ctx))
	go serveVsock(ctx, a, sessions, tl)
	servePort(ctx, a, sessions, tl)
	return errors.New("control channel loop ended")
}

func readCmdline() initsys.Cmdline {
	b, _ := os.ReadFile("/proc/cmdline")
	return initsys.ParseCmdline(string(b))
}

// servePort serves the virtio-serial port forever: wait for a host, serve it, wait again.
func servePort(ctx context.Context, a *Agent, s *Sessions, tl *timeline.Recorder) {
	var path string
	for i := 0; ; i++ {
		p, err := channel.FindPort(channel.SysVirtioPorts, control.PortName)
		if err == nil {
			path = p
			break
		}
		if i == 50 {
			tl.Logf("warn", "%v; waiting for it", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tl.Logf("debug", "control port %s is %s", control.PortName, path)
	for {
		f, err := channel.AcceptPort(ctx, path)
		if err != nil {
			tl.Logf("error", "%v", err)
			time.Sleep(time.Second)
			continue
		}
		if err := a.Serve(ctx, s, f, "virtio-serial"); err != nil {
			tl.Logf("warn", "control connection: %v", err)
		}
	}
}

func serveVsock(ctx context.Context, a *Agent, s *Sessions, tl *timeline.Recorder) {
	l, err := channel.ListenVsock(control.VsockPort)
	if errors.Is(err, channel.ErrNoVsock) {
		tl.Logf("info", "no vsock device: control over virtio-serial only")
		return
	}
	if err != nil {
		tl.Logf("warn", "%v", err)
		return
	}
	tl.Logf("info", "listening on vsock port %d", control.VsockPort)
	for {
		c, err := l.Accept()
		if err != nil {
			tl.Logf("warn", "vsock accept: %v", err)
			time.Sleep(time.Second)
			continue
		}
		go a.Serve(ctx, s, c, "vsock")
	}
}

func linuxDeps(run command.Runner) Deps {
	return Deps{
		Run:          run,
		Disks:        func() ([]control.Disk, error) { return blkid.ListDisks(blkid.SysBlock) },
		Serial:       func(dev string) string { return DiskSerial(blkid.SysBlock, dev) },
		HasMagic:     hasMagic,
		SplitOptions: fsops.SplitOptions,
		Mount:        fsops.Mount,
		Unmount:      fsops.Unmount,
		IsBusy:       fsops.IsBusy,
		Sync:         initsys.Sync,
		PowerOff:     initsys.PowerOff,
		RootOwner:    fsops.RootOwner,
		NewNFS: func(o nfsserver.Options) (NFS, error) {
			s, err := nfsserver.New(o)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		Listen: func(addr string) (net.Listener, error) { return net.Listen("tcp4", addr) },
		MemInfo: func() (int64, int64) {
			f, err := os.Open("/proc/meminfo")
			if err != nil {
				return 0, 0
			}
			defer f.Close()
			return ParseMeminfo(f)
		},
		Kernel: initsys.Kernel,
		Sleep:  time.Sleep,
		ReadHeader: func(dev string) (*luksheader.Header, error) {
			f, err := os.Open(dev)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return luksheader.Parse(f)
		},
	}
}

// onDemandModules reads the image's on-demand table; without one nothing is optional.
func onDemandModules(tl *timeline.Recorder) *initsys.Features {
	f := &initsys.Features{Table: map[string][]string{}, Load: initsys.LoadModules}
	r, err := os.Open(initsys.OnDemandFile)
	if err != nil {
		tl.Logf("warn", "no on-demand modules table: %v", err)
		return f
	}
	defer r.Close()
	if f.Table, err = initsys.ParseOnDemand(r); err != nil {
		tl.Logf("error", "%v", err)
		f.Table = map[string][]string{}
	}
	return f
}

func hasMagic(dev string) bool {
	if !strings.HasPrefix(dev, "/dev/") {
		return false
	}
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	return cryptsetup.HasMagic(f)
}
