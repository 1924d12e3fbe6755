package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/guest/timeline"
	"golang.org/x/sys/unix"
)

// Boot modules load in two sets. The virtio devices (and the power button) come first, in
// parallel along their dependencies: the agent needs them to reach the host (console, network,
// control port, disks, entropy). Everything else (device mapper, crypto, loop, virtio-mmio)
// loads in the background while the host connects and asks for the passphrase, and whatever
// needs it (commands, mounts, on-demand modules) waits.

// earlyModule reports whether a boot module must be in before Hello: the virtio device drivers,
// the power button's (a system_powerdown right after boot must not be lost), and vsock's when
// the VM has a vsock device (the host may use it for control). virtio-mmio waits: our machines
// put every device on PCI, and on arm64 virt it would probe 32 empty transports first.
func earlyModule(vsock bool) func(path string) bool {
	return func(path string) bool {
		n := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(path), ".ko"), "-", "_")
		switch {
		case n == "virtio_mmio":
			return false
		case strings.HasPrefix(n, "virtio"), n == "button", n == "evdev":
			return true
		case strings.HasPrefix(n, "vsock"), strings.HasPrefix(n, "vmw_vsock"):
			return vsock
		}
		return false
	}
}

// hasVsockDevice reports whether the VM has a virtio vsock device on PCI (vendor 0x1af4, device
// 0x1053, or 0x1012 transitional).
func hasVsockDevice() bool {
	devs, _ := filepath.Glob("/sys/bus/pci/devices/*")
	for _, d := range devs {
		v, _ := os.ReadFile(filepath.Join(d, "vendor"))
		id, _ := os.ReadFile(filepath.Join(d, "device"))
		if strings.TrimSpace(string(v)) == "0x1af4" {
			switch strings.TrimSpace(string(id)) {
			case "0x1053", "0x1012":
				return true
			}
		}
	}
	return false
}

// loadBootModules loads the early set (the "modules" step) and returns the rest.
func loadBootModules(tl *timeline.Recorder) []initsys.Module {
	f, err := os.Open(initsys.ModulesFile)
	if err != nil {
		tl.Logf("warn", "no modules list: %v", err)
		return nil
	}
	mods, err := initsys.ParseModuleDeps(f)
	f.Close()
	if err != nil {
		tl.Logf("error", "%v", err)
		return nil
	}
	first, rest := initsys.SplitModules(mods, earlyModule(hasVsockDevice()))
	reportModules(tl, "early", initsys.LoadModulesParallel(transportsLast(first)))
	return rest
}

// loadLaterModules loads mods in the background, one at a time on a thread of low priority: the
// boot's own steps (network, control port) go first instead of sharing the vCPU with a module
// per goroutine. The channel closes when they are in.
func loadLaterModules(tl *timeline.Recorder, mods []initsys.Module) <-chan struct{} {
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		// This thread only (the goroutine keeps it, and it ends with the goroutine).
		runtime.LockOSThread()
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), laterNice); err != nil {
			tl.Logf("debug", "modules: cannot lower the loader's priority: %v", err)
		}
		start := tl.Now()
		paths := make([]string, len(mods))
		for i, m := range mods {
			paths[i] = m.Path
		}
		reportModules(tl, "later", initsys.LoadModules(paths))
		tl.Step("modules-later", start, "%d more kernel modules loaded in the background", len(mods))
	}()
	return ready
}

// laterNice is the background loader's nice value: about a tenth of the CPU against the boot.
const laterNice = 10

func reportModules(tl *timeline.Recorder, set string, rs []initsys.ModuleResult) {
	var loaded, present, skipped int
	for _, r := range rs {
		switch {
		case r.Loaded:
			loaded++
		case r.Present:
			present++
		case r.Skipped != nil:
			skipped++
			tl.Logf("debug", "%v", r.Skipped)
		default:
			tl.Logf("warn", "%v", r.Err)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Took > rs[j].Took })
	var slow []string
	for _, r := range rs[:min(len(rs), 4)] {
		slow = append(slow, fmt.Sprintf("%s %v", strings.TrimSuffix(filepath.Base(r.Path), ".ko"), r.Took.Round(time.Millisecond)))
	}
	tl.Logf("debug", "modules (%s): %d loaded, %d already present, %d skipped (no device); slowest: %s",
		set, loaded, present, skipped, strings.Join(slow, ", "))
}

// afterModules makes the steps that may need a later module wait for them.
func afterModules(d Deps, ready <-chan struct{}) Deps {
	run, mount, features := d.Run, d.Mount, d.Features
	d.Run = waitRunner{run, ready}
	if mount != nil {
		d.Mount = func(dev, target, fstype string, opts fsops.Options) error {
			<-ready
			return mount(dev, target, fstype, opts)
		}
	}
	if features != nil {
		d.Features = func(names ...string) (int, error) {
			<-ready
			return features(names...)
		}
	}
	return d
}

type waitRunner struct {
	command.Runner
	ready <-chan struct{}
}

func (w waitRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return command.Result{}, ctx.Err()
	}
	return w.Runner.Run(ctx, c)
}
