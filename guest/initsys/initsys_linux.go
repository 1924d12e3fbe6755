package initsys

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type baseMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

var baseMounts = []baseMount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
}

// MountBase mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /run and /tmp. Already mounted is fine.
func MountBase() error {
	var errs []error
	for _, m := range baseMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("cannot create %s: %w", m.target, err))
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("cannot mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	return errors.Join(errs...)
}

// LoadModules finit_module()s each path in order. It never stops early: a missing module is
// reported and the rest still load.
func LoadModules(paths []string) []ModuleResult {
	out := make([]ModuleResult, 0, len(paths))
	for _, p := range paths {
		out = append(out, loadModule(p))
	}
	return out
}

func loadModule(p string) ModuleResult {
	start := time.Now()
	r := ModuleResult{Path: p}
	f, err := os.Open(p)
	if err != nil {
		r.Err = fmt.Errorf("cannot open module %s: %w", p, err)
		r.Took = time.Since(start)
		return r
	}
	err = unix.FinitModule(int(f.Fd()), "", 0)
	f.Close()
	switch {
	case err == nil:
		r.Loaded = true
	case errors.Is(err, unix.EEXIST):
		r.Present = true
	case errors.Is(err, unix.ENODEV):
		r.Skipped = fmt.Errorf("module %s: no such device (skipped)", filepath.Base(p))
	default:
		r.Err = fmt.Errorf("cannot load module %s: %w", filepath.Base(p), err)
	}
	r.Took = time.Since(start)
	return r
}

// LoadModulesParallel loads mods at once, each as soon as the modules it depends on (those of
// them in mods) have been tried: a module's init that waits for its device overlaps with the
// others, and with several vCPUs they load side by side. Results are in mods' order.
func LoadModulesParallel(mods []Module) []ModuleResult { return loadParallel(mods, loadModule) }

// Reaper collects orphans that the kernel re-parents to PID 1. os/exec waits for its own children
// by pid, so the reaper must not reap while a command runs: commands hold Guard's read lock.
type Reaper struct {
	Guard sync.RWMutex
}

// Start reaps on every SIGCHLD until ctx ends. A SIGCHLD that arrives while a command runs is
// retried a second later, so an idle guest has no timer to wake it.
func (r *Reaper) Start(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		defer signal.Stop(ch)
		var retry <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
			case <-retry:
			}
			retry = nil
			if !r.reap() {
				retry = time.After(time.Second)
			}
		}
	}()
}

// reap collects every exited orphan; false if a command was running, so it must try again.
func (r *Reaper) reap() bool {
	if !r.Guard.TryLock() {
		return false
	}
	defer r.Guard.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return true
		}
	}
}

// ShutdownSignals returns a channel that receives SIGTERM, SIGINT (ctrl-alt-del) and SIGPWR.
func ShutdownSignals() <-chan os.Signal {
	// Ctrl-alt-del sends SIGINT to PID 1 instead of rebooting at once.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGPWR)
	return ch
}

const (
	evKey    = 1
	keyPower = 116
)

// WatchPowerButton calls fn once when any input device reports KEY_POWER (ACPI power button on
// x86, gpio-keys on arm64 virt). It returns how many devices it watches; 0 means the button
// modules (button, evdev) are not loaded.
func WatchPowerButton(fn func()) int {
	paths, _ := filepath.Glob("/dev/input/event*")
	var once sync.Once
	n := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		n++
		go func() {
			defer f.Close()
			// struct input_event: timeval (2 longs), u16 type, u16 code, s32 value.
			tv := 16
			if strings.HasSuffix(runtime.GOARCH, "32") || runtime.GOARCH == "386" || runtime.GOARCH == "arm" {
				tv = 8
			}
			buf := make([]byte, tv+8)
			for {
				if _, err := f.Read(buf); err != nil {
					return
				}
				typ := binary.NativeEndian.Uint16(buf[tv:])
				code := binary.NativeEndian.Uint16(buf[tv+2:])
				val := int32(binary.NativeEndian.Uint32(buf[tv+4:]))
				if typ == evKey && code == keyPower && val == 1 {
					once.Do(fn)
				}
			}
		}()
	}
	return n
}

// Kernel returns uname -r.
func Kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Sync flushes every filesystem.
func Sync() { unix.Sync() }

// PowerOff syncs, takes the network down (QuiesceNetwork: the kernel can hang in device_shutdown
// otherwise) and stops the VM; it returns only on failure.
func PowerOff() error {
	unix.Sync()
	_ = QuiesceNetwork() // best effort: powering off goes on whatever it says
	_, err := os.Stat("/sys/firmware/acpi/tables")
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if PowerOffMode(runtime.GOARCH, err == nil) == "restart" {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("cannot power off: %w", err)
	}
	select {} // the kernel is stopping us
}
