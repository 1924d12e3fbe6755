package vmbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/luksmount/luksmount/bench/nfsrpc"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
)

// Machine is what every server VM of the benchmark gets, ours and nfsd alike.
type Machine struct {
	MemoryMiB int
	CPUs      int
}

// Step is one timed step of a mount.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Ours is one running agent VM serving the disk.
type Ours struct {
	VM    *vm.VM
	Net   Net
	Steps []Step
	Total float64 // QEMU start to client mounted, seconds
	dir   string
	prof  string // the agent's profile port on the host
}

// KDF is the bench disk's key derivation: real argon2id with fixed cost (64 MiB, 4 passes), so
// every run unlocks the same work; cryptsetup's own benchmark under TCG on a shared machine
// picks a different cost each time and takes a minute to do it.
var KDF = control.FormatRequest{Type: "luks2", PBKDF: "argon2id", PBKDFMemoryKiB: 64 << 10, PBKDFForceIterations: 4, Label: "lmbench"}

// ProfilePort is the guest port the agent serves its profiles on in the bench, asked for with
// profileFlag on the kernel command line (guest/agent ProfileFlag).
const (
	ProfilePort = 6060
	profileFlag = "luksmount.pprof"
)

// startAgent boots the agent image on disk behind n. prof is the host address of the agent's
// profile port.
func startAgent(ctx context.Context, im Images, disk string, m Machine, n Net, logf func(string, ...any)) (v *vm.VM, dir, prof string, err error) {
	dir, err = os.MkdirTemp("", "lmbench-") // short: unix socket paths are limited
	if err != nil {
		return nil, "", "", err
	}
	qc := qemu.Config{
		Arch: qemu.Arch(runtime.GOARCH), Accel: qemu.AccelTCG, HostOS: runtime.GOOS,
		MemoryMiB: m.MemoryMiB, CPUs: m.CPUs, Kernel: im.Kernel, Initrd: im.Agent,
		Disks:   []qemu.Disk{{Path: disk, Serial: "lmbench"}},
		Cmdline: profileFlag + "=" + strconv.Itoa(ProfilePort),
	}
	var hostPorts []int
	if n.User {
		// QEMU's user network on vnet's addresses: the agent's static setup works unchanged.
		if qc.UserNet, hostPorts, err = serverNet(2049, ProfilePort); err != nil {
			os.RemoveAll(dir)
			return nil, "", "", err
		}
		qc.NetMTU = n.mtu()
	}
	v, err = vm.Start(ctx, vm.Spec{
		Config:        qc,
		NetMTU:        n.MTU,
		NetExtraPorts: []int{ProfilePort},
		RuntimeDir:    filepath.Join(dir, "run"),
		ConsoleLog:    filepath.Join(dir, "console.log"),
		Lifetime:      40 * time.Minute,
		Logf: func(format string, args ...any) {
			if logf != nil {
				logf("  host/vm: "+format, args...)
			}
		},
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", "", fmt.Errorf("start agent VM: %w", err)
	}
	if nw := v.Network(); nw != nil {
		prof = nw.ForwardAddr(ProfilePort).String()
	} else {
		prof = net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPorts[1]))
	}
	return v, dir, prof, nil
}

// FormatDisk makes disk a LUKS2 (KDF) + ext4 volume through the agent.
func FormatDisk(ctx context.Context, im Images, disk string, m Machine, pass []byte, logf func(string, ...any)) error {
	v, dir, _, err := startAgent(ctx, im, disk, m, Net{}, logf)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer v.Kill()
	if _, err := v.Ready(ctx, "bench"); err != nil {
		return fmt.Errorf("agent not ready: %w\n%s", err, v.ConsoleTail(30))
	}
	if _, err := v.Control().Format(ctx, KDF, pass); err != nil {
		return fmt.Errorf("format: %w", err)
	}
	if _, err := v.Shutdown(ctx, false); err != nil {
		return fmt.Errorf("shutdown after format: %w", err)
	}
	return nil
}

// BootOurs boots the agent on disk, unlocks, mounts and serves it as the product does, and
// mounts the export from the host with a minimal NFS client through the 127.0.0.1 forward (n:
// host/vnet as the product, or QEMU's user network for the path comparison).
func BootOurs(ctx context.Context, im Images, disk string, m Machine, pass []byte, n Net, logf func(string, ...any)) (*Ours, error) {
	t0 := time.Now()
	v, dir, prof, err := startAgent(ctx, im, disk, m, n, logf)
	if err != nil {
		return nil, err
	}
	o := &Ours{VM: v, dir: dir, Net: n, prof: prof}
	fail := func(err error) (*Ours, error) {
		tail := v.ConsoleTail(30)
		o.Stop(context.Background())
		return nil, fmt.Errorf("%w\nconsole tail:\n%s", err, tail)
	}
	c := v.Control()
	hello, err := v.Ready(ctx, "bench")
	if err != nil {
		return fail(fmt.Errorf("agent not ready: %w", err))
	}
	tReady := time.Since(t0).Seconds()
	before := time.Now()
	st, err := c.Status(ctx)
	if err != nil {
		return fail(err)
	}
	// The guest's clock starts with the kernel: map it onto ours.
	kernelAt := before.Add(time.Since(before)/2).Sub(t0).Seconds() - st.UptimeSeconds
	ev := map[string]control.Event{}
	for _, e := range hello.Timeline {
		if e.Kind == control.EventStep {
			ev[e.Step] = e
		}
	}
	o.Steps = append(o.Steps, Step{"qemu start -> kernel", kernelAt})
	o.Steps = append(o.Steps, Step{"kernel -> /init", ev["init"].Time})
	o.Steps = append(o.Steps, Step{"/init (base mounts)", ev["init"].Duration})
	o.Steps = append(o.Steps, Step{"modules", ev["modules"].Duration})
	o.Steps = append(o.Steps, Step{"network", ev["network"].Duration})
	netEnd := kernelAt + ev["network"].Time + ev["network"].Duration
	o.Steps = append(o.Steps, Step{"agent answers host", tReady - netEnd})

	step := func(name string, fn func() error) error {
		t := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		o.Steps = append(o.Steps, Step{name, time.Since(t).Seconds()})
		return nil
	}
	if err := step("unlock", func() error { _, err := c.Unlock(ctx, control.UnlockRequest{}, pass); return err }); err != nil {
		return fail(err)
	}
	if err := step("mount", func() error { _, err := c.Mount(ctx, control.MountRequest{}); return err }); err != nil {
		return fail(err)
	}
	if err := step("nfs ready", func() error {
		_, err := c.Serve(ctx, control.ServeRequest{ClientUID: 0, ClientGID: 0, Owner: "none"})
		return err
	}); err != nil {
		return fail(err)
	}
	if err := step("client mounted", func() error {
		cl, err := nfsrpc.Dial(v.NFSAddr())
		if err != nil {
			return err
		}
		defer cl.Close()
		fh, err := cl.Mount("/")
		if err != nil {
			return err
		}
		_, err = cl.Getattr(fh)
		return err
	}); err != nil {
		return fail(err)
	}
	o.Total = time.Since(t0).Seconds()
	return o, nil
}

// Footprint is what a mounted session costs while idle.
type Footprint struct {
	GuestMemUsedKiB int64   `json:"guest_mem_used_kib"`
	QEMURSSKiB      int64   `json:"qemu_rss_kib"`
	HostRSSKiB      int64   `json:"host_rss_kib"` // this process: host/vm + gvproxy in-process (plus the bench)
	IdleSeconds     float64 `json:"idle_window_seconds"`
	IdleCPUQEMU     float64 `json:"idle_cpu_qemu_seconds"`
	IdleCPUHost     float64 `json:"idle_cpu_host_seconds"`
}

// Footprint measures memory now and CPU over an idle window.
func (o *Ours) Footprint(ctx context.Context, idle time.Duration) (Footprint, error) {
	var f Footprint
	st, err := o.VM.Control().Status(ctx)
	if err != nil {
		return f, err
	}
	f.GuestMemUsedKiB = st.MemTotalKiB - st.MemAvailableKiB
	pid := o.VM.Pid()
	f.QEMURSSKiB = RSSKiB(pid)
	runtime.GC()
	f.HostRSSKiB = RSSKiB(os.Getpid())
	q0, h0 := CPUSeconds(pid), CPUSeconds(os.Getpid())
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return f, ctx.Err()
	}
	f.IdleSeconds = idle.Seconds()
	f.IdleCPUQEMU = CPUSeconds(pid) - q0
	f.IdleCPUHost = CPUSeconds(os.Getpid()) - h0
	return f, nil
}

// CPUProfile starts the agent's CPU profile; stop ends it and writes it to path.
func (o *Ours) CPUProfile(path string) (stop func() error, err error) {
	c, err := net.DialTimeout("tcp", o.prof, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("agent profile port: %w", err)
	}
	if _, err := c.Write([]byte("cpu\n")); err != nil {
		c.Close()
		return nil, err
	}
	return func() error {
		defer c.Close()
		c.(*net.TCPConn).CloseWrite()
		c.SetDeadline(time.Now().Add(time.Minute))
		b, err := io.ReadAll(c)
		if err != nil {
			return fmt.Errorf("agent CPU profile: %w", err)
		}
		if len(b) == 0 {
			return fmt.Errorf("agent CPU profile: empty (is the agent built with the profile hook?)")
		}
		return os.WriteFile(path, b, 0o644)
	}, nil
}

// HeapProfile writes the agent's heap profile to path.
func (o *Ours) HeapProfile(path string) error {
	c, err := net.DialTimeout("tcp", o.prof, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte("heap\n"))
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(time.Minute))
	b, err := io.ReadAll(c)
	if err != nil || len(b) == 0 {
		return fmt.Errorf("agent heap profile: %d bytes (%v)", len(b), err)
	}
	return os.WriteFile(path, b, 0o644)
}

// Stop shuts the agent down cleanly (sync, unmount, close) and removes the run directory.
func (o *Ours) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, err := o.VM.Shutdown(ctx, false)
	os.RemoveAll(o.dir)
	return err
}
