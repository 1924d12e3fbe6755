// Package vm starts and supervises one luksmount VM: it prepares a private runtime directory,
// starts the in-process network (host/vnet), runs QEMU (host/qemu renders the arguments), connects
// the control channel and stops everything in order: the agent's own shutdown, then ACPI
// power-off, then QMP quit, then SIGKILL.
package vm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/vnet"
	"github.com/luksmount/luksmount/pkg/control"
)

// Spec is what Start needs. Config carries the machine (Arch, Accel, HostOS, MemoryMiB, CPUs,
// Kernel, Initrd, Cmdline, Disks); Start fills in every socket and file path.
type Spec struct {
	Config qemu.Config

	// RuntimeDir holds the sockets, pid file and (by default) console log. Start creates it 0700 if
	// it does not exist and then removes it when QEMU exits; an existing directory must be a 0700
	// directory owned by this user, and only the files Start made in it are removed.
	RuntimeDir string

	// DiskFiles optionally hands QEMU already-open disks, index by index with Config.Disks (nil or
	// a nil entry = QEMU opens Path itself). QEMU gets them through -add-fd, so it needs no right to
	// open the device. Not for devices on macOS (QEMU's F_SETFL on them fails: qemu.DiskFDWorks).
	DiskFiles []*os.File

	// RunAs runs QEMU as this user, typically SUDO_UID/SUDO_GID (see Unprivileged): on Linux it is
	// exec'd as the user with DiskFiles set; on macOS it starts as root, opens the disk and drops
	// to the user before the guest runs (qemu.RunAs).
	RunAs *User

	// ConsoleLog is where the guest's serial console goes; "" = RuntimeDir/console.log (removed
	// with the directory: pass a path outside it to keep the log).
	ConsoleLog string

	// QEMU is the emulator binary; "" = look up Config.Binary() (see FindQEMU).
	QEMU string

	// BindAddr and BindPort are the NFS forward's listen address ("" = 127.0.0.1, 0 = any port);
	// GuestNFSPort is the guest port it reaches (0 = 2049).
	BindAddr     string
	BindPort     int
	GuestNFSPort int
	// NetMTU is the virtual link's MTU (0 = vnet.DefaultMTU); NetExtraPorts are more guest ports
	// host/vnet forwards and lets the guest answer from (bench: the agent's profile port).
	NetMTU        int
	NetExtraPorts []int

	// ConnectTimeout bounds QEMU's start-up until it connects the control port (0 = 30 s).
	ConnectTimeout time.Duration
	// Lifetime, if set, is a hard limit after which QEMU is killed (tests).
	Lifetime time.Duration

	// OnEvent receives the agent's events (timeline steps, progress, log lines).
	OnEvent func(control.Event)
	// OnQMPEvent, if set, receives QEMU's QMP events (BLOCK_IO_ERROR: see events.go).
	OnQMPEvent func(QMPEvent)
	// Logf, if set, receives the host-side timeline: start, connect, exit, with durations.
	Logf func(format string, args ...any)
}

// User is a uid/gid pair to run QEMU as.
type User struct{ UID, GID uint32 }

// VM is a running QEMU.
type VM struct {
	spec    Spec
	cfg     qemu.Config
	args    []string
	cmd     *exec.Cmd
	net     *vnet.Network
	ctl     *control.Client
	start   time.Time
	logf    func(string, ...any)
	created bool     // Start made RuntimeDir
	files   []string // what Start made in RuntimeDir, to remove

	stderr *tailBuffer

	done     chan struct{}
	exitErr  error
	consoleT string // console tail captured at exit

	mu       sync.Mutex
	stopping bool // Shutdown was asked; an exit is expected
}

// Errors callers branch on.
var (
	// ErrExited is wrapped when QEMU stopped before it was asked to.
	ErrExited = errors.New("the VM stopped")
	// ErrQEMUNotFound is returned when no QEMU binary for the guest architecture is installed.
	ErrQEMUNotFound = errors.New("QEMU not found")
)

const (
	defaultConnectTimeout = 30 * time.Second
)

// Start runs the VM described by spec and returns once QEMU has connected the control channel.
// The agent answers on it once the guest has booted: see Ready. ctx bounds the start only.
func Start(ctx context.Context, spec Spec) (_ *VM, err error) {
	v := &VM{spec: spec, cfg: spec.Config, done: make(chan struct{}), stderr: newTailBuffer(16 << 10)}
	v.logf = spec.Logf
	if v.logf == nil {
		v.logf = func(string, ...any) {}
	}
	if spec.RuntimeDir == "" {
		return nil, errors.New("vm: runtime directory not set")
	}
	if len(spec.DiskFiles) > len(spec.Config.Disks) {
		return nil, fmt.Errorf("vm: %d disk files for %d disks", len(spec.DiskFiles), len(spec.Config.Disks))
	}
	if spec.RunAs != nil && runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		return nil, fmt.Errorf("vm: running QEMU as another user is only supported on Linux and macOS")
	}
	bin := spec.QEMU
	if bin == "" {
		if bin, err = FindQEMU(v.cfg.Binary()); err != nil {
			return nil, err
		}
	}
	plan := planLaunch(runtime.GOOS, spec.RunAs)
	if plan.qemuRunAs != nil {
		if err := checkRunWithUser(bin); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(spec.RuntimeDir)
	if err != nil {
		return nil, fmt.Errorf("vm: bad runtime directory %s: %w", spec.RuntimeDir, err)
	}
	if v.created, err = prepareDir(dir); err != nil {
		return nil, err
	}
	// From here on, a failure undoes what was made.
	defer func() {
		if err != nil {
			if v.net != nil {
				v.net.Close()
			}
			v.cleanup(dir)
		}
	}()

	path := func(name string) string {
		p := filepath.Join(dir, name)
		v.files = append(v.files, p)
		return p
	}
	v.cfg.ControlSocket = path("control.sock")
	if spec.Config.UserNet == nil {
		v.cfg.NetSocket = path("net.sock")
		// The guest learns the link's MTU from virtio-net (host_mtu); gvproxy uses the same.
		v.cfg.NetMTU = cmp.Or(spec.NetMTU, vnet.DefaultMTU)
	}
	v.cfg.QMPSocket = path("qmp.sock")
	if spec.OnQMPEvent != nil {
		v.cfg.EventSocket = path("qmp-events.sock")
	}
	v.cfg.PidFile = path("qemu.pid")
	v.cfg.ConsoleLog = spec.ConsoleLog
	if v.cfg.ConsoleLog == "" || spec.RunAs != nil {
		// QEMU running as the user may not be able to write next to a root-owned session log, so it
		// writes into the runtime directory and wait() copies the log to spec.ConsoleLog at exit.
		v.cfg.ConsoleLog = path("console.log")
	}
	for _, p := range []string{v.cfg.ControlSocket, v.cfg.NetSocket, v.cfg.QMPSocket} {
		if p == "" {
			continue
		}
		if err := session.CheckSocketPath(runtime.GOOS, p); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
	}
	v.cfg.Disks = append([]qemu.Disk(nil), spec.Config.Disks...)
	v.cfg.RunAs = plan.qemuRunAs
	var extra []*os.File
	for i, f := range spec.DiskFiles {
		if f != nil {
			extra = append(extra, f)
			v.cfg.Disks[i].FD = 2 + len(extra) // ExtraFiles[k] is fd 3+k in QEMU
		}
	}
	if v.args, err = v.cfg.Args(); err != nil {
		return nil, err
	}

	ctlLn, err := net.Listen("unix", v.cfg.ControlSocket)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the control channel on %s: %w", v.cfg.ControlSocket, err)
	}
	defer ctlLn.Close() // one connection only; the socket file goes with the listener
	// Config.UserNet (bench: the path comparison) replaces gvproxy with QEMU's own user network.
	if v.cfg.NetSocket != "" {
		v.net, err = vnet.Start(vnet.Config{SocketPath: v.cfg.NetSocket, BindAddr: spec.BindAddr, BindPort: spec.BindPort,
			GuestPort: spec.GuestNFSPort, MTU: v.cfg.NetMTU, ExtraPorts: spec.NetExtraPorts})
		if err != nil {
			return nil, err
		}
	}
	if spec.RunAs != nil {
		if err := reachable(spec.RunAs, filepath.Dir(dir)); err != nil {
			return nil, err
		}
		if err := handOver(spec.RunAs, dir, v.created, v.cfg.ControlSocket, v.cfg.NetSocket); err != nil {
			return nil, err
		}
	}

	v.cmd = exec.Command(bin, v.args...)
	v.cmd.Stdin = nil // /dev/null
	v.cmd.Stdout = v.stderr
	v.cmd.Stderr = v.stderr
	v.cmd.ExtraFiles = extra
	v.cmd.Dir = dir
	// Own process group: a ^C at the terminal reaches luksmount, which stops the VM in order.
	v.cmd.SysProcAttr = sysProcAttr(plan.exec)
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", bin, err)
	}
	v.logf("qemu started: pid %d, %s %s, %d MiB, %d vCPU", v.cmd.Process.Pid, v.cfg.Arch, v.cfg.Accel, v.cfg.MemoryMiB, max(v.cfg.CPUs, 1))
	// The whole command line, shell-quoted, so the session log alone reproduces a failed boot. It
	// holds paths and sizes only: the passphrase crosses the control channel, never argv.
	v.logf("qemu command line: %s", qemu.Quote(append([]string{bin}, v.args...)))
	go v.wait(dir)
	if spec.OnQMPEvent != nil {
		evCtx, stopEvents := context.WithCancel(context.Background())
		go func() { <-v.done; stopEvents() }()
		go watchEvents(evCtx, v.cfg.EventSocket, spec.OnQMPEvent, v.logf)
	}
	if spec.Lifetime > 0 {
		go func() {
			select {
			case <-v.done:
			case <-lifetimeTimer(spec.Lifetime):
				v.logf("qemu pid %d reached its %s lifetime: killing it", v.cmd.Process.Pid, spec.Lifetime)
				v.Kill()
			}
		}()
	}

	conn, err := v.acceptControl(ctx, ctlLn)
	if err != nil {
		v.Kill()
		<-v.done
		return nil, err
	}
	v.ctl = control.NewClient(conn, spec.OnEvent)
	v.logf("control channel connected after %s", since(v.start))
	return v, nil
}

// lifetimeTimer starts Spec.Lifetime's clock; a test holds it until Start has returned.
var lifetimeTimer = time.After

// acceptControl waits for QEMU to connect the control port, for QEMU to exit, or for the deadline.
func (v *VM) acceptControl(ctx context.Context, ln net.Listener) (net.Conn, error) {
	timeout := v.spec.ConnectTimeout
	if timeout == 0 {
		timeout = defaultConnectTimeout
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("cannot accept the control connection: %w", r.err)
		}
		return r.c, nil
	case <-v.done:
		return nil, v.exitError("QEMU exited before connecting the control channel")
	case <-timer.C:
		return nil, fmt.Errorf("QEMU did not connect the control channel within %s%s", timeout, v.stderrHint())
	case <-ctx.Done():
		return nil, fmt.Errorf("starting the VM: %w", ctx.Err())
	}
}

// wait reaps QEMU and tears down everything around it.
func (v *VM) wait(dir string) {
	err := v.cmd.Wait()
	v.consoleT = v.readConsoleTail()
	if v.spec.ConsoleLog != "" && v.spec.ConsoleLog != v.cfg.ConsoleLog {
		copyFile(v.cfg.ConsoleLog, v.spec.ConsoleLog)
	}
	if v.net != nil {
		v.net.Close()
	}
	if v.ctl != nil {
		// QEMU's exit closed its end of the control socket. Let the reader drain what is
		// already buffered (the agent answers Shutdown and powers off at once) before closing
		// ours, or that reply is lost.
		select {
		case <-v.ctl.Done():
		case <-time.After(2 * time.Second):
		}
		v.ctl.Close()
	}
	v.mu.Lock()
	stopping := v.stopping
	v.mu.Unlock()
	switch {
	case err != nil:
		v.exitErr = v.exitError(fmt.Sprintf("QEMU exited: %v", err))
	case panicked(v.consoleT):
		v.exitErr = v.exitError("the guest kernel panicked")
	case !stopping:
		// -no-reboot turns every guest power-off or reboot into exit status 0.
		v.exitErr = v.exitError("the VM powered off by itself")
	}
	v.logf("qemu pid %d exited after %s: %s", v.cmd.Process.Pid, since(v.start), exitSummary(err, v.exitErr))
	v.cleanup(dir)
	close(v.done)
}

func exitSummary(waitErr, exitErr error) string {
	if waitErr != nil {
		return waitErr.Error()
	}
	if exitErr != nil {
		return "status 0, unexpected"
	}
	return "status 0"
}

// cleanup removes what Start made.
func (v *VM) cleanup(dir string) {
	if v.created {
		os.RemoveAll(dir)
		return
	}
	for _, f := range v.files {
		os.Remove(f)
	}
}

// QMPSocket is QEMU's QMP command socket (Unplug and Replug take it).
func (v *VM) QMPSocket() string { return v.cfg.QMPSocket }

// Control is the control channel to the agent.
func (v *VM) Control() *control.Client { return v.ctl }

// Network is the VM's virtual network.
func (v *VM) Network() *vnet.Network { return v.net }

// NFSAddr is the host address (127.0.0.1:PORT by default) forwarded to the guest's NFS port.
// With Config.UserNet it is the first hostfwd's.
func (v *VM) NFSAddr() string {
	if v.net == nil {
		if u := v.cfg.UserNet; u != nil && len(u.Forwards) > 0 {
			f := u.Forwards[0]
			return net.JoinHostPort(cmp.Or(f.HostAddr, "127.0.0.1"), strconv.Itoa(f.HostPort))
		}
		return ""
	}
	return v.net.Addr().String()
}

// Pid is QEMU's process id.
func (v *VM) Pid() int { return v.cmd.Process.Pid }

// Accel is the accelerator QEMU runs with.
func (v *VM) Accel() string { return string(v.cfg.Accel) }

// Args is the QEMU command line (without the binary), for logs and reproducing a run.
func (v *VM) Args() []string { return append([]string(nil), v.args...) }

// ConsoleLog is the path of the serial console log: Spec.ConsoleLog if set (with RunAs, filled when
// QEMU exits), else a file in RuntimeDir that goes with it.
func (v *VM) ConsoleLog() string {
	if v.spec.ConsoleLog != "" {
		return v.spec.ConsoleLog
	}
	return v.cfg.ConsoleLog
}

// Done is closed once QEMU has exited and the runtime directory is cleaned up.
func (v *VM) Done() <-chan struct{} { return v.done }

// Err is why QEMU exited (after Done): nil for an exit that Shutdown asked for.
func (v *VM) Err() error {
	select {
	case <-v.done:
		return v.exitErr
	default:
		return nil
	}
}

// Wait waits for QEMU to exit and returns Err.
func (v *VM) Wait() error {
	<-v.done
	return v.exitErr
}

// Kill stops QEMU at once (SIGKILL). The guest gets no chance to sync: use Shutdown first.
func (v *VM) Kill() error {
	select {
	case <-v.done:
		return nil
	default:
	}
	if err := v.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cannot kill qemu pid %d: %w", v.cmd.Process.Pid, err)
	}
	return nil
}

// Console is the last lines of the guest's serial console, for error messages.
func (v *VM) Console() string {
	select {
	case <-v.done:
		return v.consoleT
	default:
		return v.readConsoleTail()
	}
}

// Stderr is the last of QEMU's own output (its error messages).
func (v *VM) Stderr() string { return v.stderr.String() }

// Escalation budgets once the agent's shutdown has failed or ctx has ended.
var (
	exitAfterAgentTimeout = 30 * time.Second // the agent replied; it powers off after syncing
	closedExitTimeout     = 10 * time.Second // ... and had closed everything (a powered-off guest takes < 1 s)
	acpiTimeout           = 30 * time.Second
	quitTimeout           = 5 * time.Second
)

// Shutdown stops the VM in order and waits for QEMU to exit. The agent's Shutdown (sync, unmount,
// close the mapping, power off) comes first, with force passed on, bounded by ctx. If the agent does
// not answer or QEMU does not exit: ACPI power-off (which the agent also handles cleanly), then QMP
// quit, then SIGKILL, each with its own short budget, so Shutdown always returns with QEMU gone.
// The error is nil only for a clean agent shutdown.
func (v *VM) Shutdown(ctx context.Context, force bool) (*control.ShutdownReply, error) {
	v.mu.Lock()
	v.stopping = true
	v.mu.Unlock()
	select {
	case <-v.done:
		return nil, v.exitErr
	default:
	}
	t0 := time.Now()
	reply, agentErr := v.ctl.Shutdown(ctx, control.ShutdownRequest{Force: force})
	if agentErr == nil && reply != nil && reply.Synced && reply.Unmounted && reply.Closed {
		// Nothing is open in the guest any more: if its kernel hangs on the way to power-off,
		// QEMU can be quit without risk to the drive (QEMU flushes its block layer on quit; the
		// caller flushes the drive after). The hang once seen here (virtio-net looping in
		// device_shutdown, issue 11) is avoided in the guest by initsys.QuiesceNetwork; this
		// stays as the last resort for any other.
		if !v.waitExit(closedExitTimeout) {
			v.logf("warning: the guest kernel did not power off %s after the agent had synced, unmounted and closed everything: QEMU stopped with QMP quit", closedExitTimeout)
			if err := v.qmp("quit"); err == nil && v.waitExit(quitTimeout) {
				return reply, nil
			}
		}
	}
	if agentErr == nil {
		if v.waitExit(exitAfterAgentTimeout) {
			v.logf("VM shut down by the agent in %s", since(t0))
			return reply, v.exitErr
		}
		agentErr = errors.New("QEMU did not exit after the agent's shutdown")
	}
	select {
	case <-v.done:
		// The agent powered off before its reply got through.
		return reply, nil
	default:
	}
	v.logf("agent shutdown failed (%v): sending ACPI power-off", agentErr)
	if err := v.qmp("system_powerdown"); err == nil && v.waitExit(acpiTimeout) {
		return reply, fmt.Errorf("the agent did not shut down (%w); the VM powered off through ACPI", agentErr)
	}
	v.logf("ACPI power-off did not stop the VM: QMP quit")
	if err := v.qmp("quit"); err == nil && v.waitExit(quitTimeout) {
		return reply, fmt.Errorf("the agent did not shut down (%w); QEMU quit without a guest power-off", agentErr)
	}
	v.logf("QMP quit did not stop the VM: SIGKILL")
	v.Kill()
	<-v.done
	return reply, fmt.Errorf("the agent did not shut down (%w); QEMU was killed", agentErr)
}

// waitExit waits up to d for QEMU to exit.
func (v *VM) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-v.done:
		return true
	case <-t.C:
		return false
	}
}

func (v *VM) qmp(command string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return qmpExecute(ctx, v.cfg.QMPSocket, command)
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
