// Package agent is the guest agent's lifecycle and its control.HandlerFunc: a state machine over
// unlock, mount, serve and shutdown, with every step recorded in the timeline sent to the host.
package agent

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/guest/nfsserver"
	"github.com/luksmount/luksmount/guest/timeline"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/version"
)

// GuestIP is the guest's address on gvproxy's network, reported in ServeReply.
const GuestIP = "192.168.127.2"

// NFS is the part of nfsserver.Server the agent uses.
type NFS interface {
	Serve(net.Listener) error
	Close() error
}

// Deps are the agent's ties to the system, replaced by fakes in tests.
type Deps struct {
	Run          command.Runner
	Disks        func() ([]control.Disk, error)
	HasMagic     func(dev string) bool
	SplitOptions func([]string) (fsops.Options, error)
	Mount        func(dev, target, fstype string, opts fsops.Options) error
	Unmount      func(target string, lazy bool) error
	IsBusy       func(error) bool
	Sync         func()
	PowerOff     func() error
	RootOwner    func(path string) (uid, gid uint32, err error)
	NewNFS       func(nfsserver.Options) (NFS, error)
	Listen       func(addr string) (net.Listener, error)
	MemInfo      func() (totalKiB, availKiB int64)
	Kernel       func() string
	Sleep        func(time.Duration)
	// ReadHeader parses a LUKS header; Features loads on-demand kernel modules by feature
	// (initsys.Features.Need). Either nil: nothing is checked or loaded before unlocking.
	ReadHeader func(dev string) (*luksheader.Header, error)
	Features   func(names ...string) (int, error)
	// Serial reads a disk's virtio serial (nil: no disk is a detached header; header.go).
	Serial func(dev string) string
}

// Agent holds the guest's state. Create it with New.
type Agent struct {
	deps  Deps
	tl    *timeline.Recorder
	crypt *cryptsetup.Tool
	srv   *control.Server

	// UnmountBackoff is the wait before each unmount/close retry.
	UnmountBackoff []time.Duration

	opMu sync.Mutex // serialises the state-changing operations

	mu         sync.Mutex // guards what follows
	state      control.State
	device     string // the disk the mapping or mount came from
	mapper     string
	mountpoint string
	fstype     string
	label      string
	uuid       string
	readOnly   bool
	serveAddr  string
	nfs        NFS
	nfsStop    chan struct{}
	nfsDone    chan struct{}
	powering   bool
	stk        stackState // what the drive's stack assembled (stack_volumes.go); under opMu
	detached   string     // the detached header's disk the mapping was opened with (header.go)
}

// New returns an agent in the ready state.
func New(deps Deps, tl *timeline.Recorder) *Agent {
	if deps.Sleep == nil {
		deps.Sleep = time.Sleep
	}
	a := &Agent{
		deps:           deps,
		tl:             tl,
		state:          control.StateReady,
		stk:            newStackState(),
		UnmountBackoff: []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second},
	}
	a.crypt = &cryptsetup.Tool{Run: deps.Run, Memory: a.kdfMemory}
	a.srv = &control.Server{Handler: a.Handle, OnPanic: func(op control.Op, v any, stack []byte) {
		tl.Logf("error", "agent bug in %s: %v\n%s", op, v, stack)
	}}
	tl.AddSink(a.srv.Broadcast)
	return a
}

// Server is the control server to serve host connections with.
func (a *Agent) Server() *control.Server { return a.srv }

// State returns the current lifecycle state.
func (a *Agent) State() control.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Holding reports whether a filesystem is mounted or a mapping open.
func (a *Agent) Holding() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mapper != "" || a.mountpoint != ""
}

// Handle is the control.HandlerFunc.
func (a *Agent) Handle(ctx context.Context, r *control.Request) (any, error) {
	switch r.Op {
	case control.OpHello:
		return a.hello(r)
	case control.OpStatus:
		return a.status(), nil
	case control.OpProbe:
		return a.probeStack(ctx, r)
	case control.OpUnlock:
		return a.unlock(ctx, r)
	case control.OpMount:
		return a.mount(ctx, r)
	case control.OpCheck:
		return a.check(ctx, r)
	case control.OpServe:
		return a.serve(ctx, r)
	case control.OpFormat:
		return a.format(ctx, r)
	case control.OpTrim:
		return a.trim(ctx, r)
	case control.OpResize:
		return a.resize(ctx, r)
	case control.OpShutdown:
		var req control.ShutdownRequest
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		rep, err := a.Shutdown(ctx, req)
		if err != nil {
			return nil, err
		}
		if !req.NoPowerOff {
			r.AfterReply(a.powerOff)
		}
		return rep, nil
	default:
		return nil, control.Errorf(control.CodeUnsupportedOp, "unknown operation %q: the agent and luksmount come from different builds", r.Op)
	}
}

func (a *Agent) hello(r *control.Request) (any, error) {
	var req control.HelloRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if req.ProtocolVersion != 0 && req.ProtocolVersion != control.ProtocolVersion {
		return nil, control.Errorf(control.CodeVersionMismatch, "host %s speaks protocol %d, agent %s speaks %d; use the luksmount and guest images from one build",
			req.HostVersion, req.ProtocolVersion, version.String(), control.ProtocolVersion)
	}
	kernel := ""
	if a.deps.Kernel != nil {
		kernel = a.deps.Kernel()
	}
	return control.HelloReply{
		AgentVersion:    version.String(),
		ProtocolVersion: control.ProtocolVersion,
		Kernel:          kernel,
		Arch:            runtime.GOARCH,
		State:           a.State(),
		Timeline:        a.tl.Events(),
	}, nil
}

func (a *Agent) status() control.StatusReply {
	a.mu.Lock()
	st := control.StatusReply{State: a.state, Mapper: a.mapper, Mountpoint: a.mountpoint, FSType: a.fstype,
		Label: a.label, ServeAddress: a.serveAddr, UptimeSeconds: a.tl.Now()}
	a.mu.Unlock()
	if a.deps.MemInfo != nil {
		st.MemTotalKiB, st.MemAvailableKiB = a.deps.MemInfo()
	}
	return st
}

func (a *Agent) badState(format string, args ...any) error {
	return control.Errorf(control.CodeBadState, format+" (agent is %s)", append(args, a.State())...)
}

func (a *Agent) setState(s control.State) {
	a.mu.Lock()
	a.state = s
	a.mu.Unlock()
}

// disks lists the VM's disks.
func (a *Agent) disks() ([]control.Disk, error) {
	ds, err := a.deps.Disks()
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "%v", err)
	}
	return a.withoutHeader(ds), nil
}

// pickDevice checks a requested device against the VM's disks, or picks the first one that
// matches want (nil = any).
func (a *Agent) pickDevice(ctx context.Context, dev string, want func(blkid.Info) bool, noneCode control.Code, none string) (string, blkid.Info, error) {
	ds, err := a.disks()
	if err != nil {
		return "", blkid.Info{}, err
	}
	if dev != "" {
		var names []string
		for _, d := range ds {
			if d.Device == dev {
				in, err := blkid.Probe(ctx, a.deps.Run, dev)
				if err != nil {
					return "", blkid.Info{}, control.Errorf(control.CodeIOError, "cannot probe %s: %v", dev, err)
				}
				return dev, in, nil
			}
			names = append(names, d.Device)
		}
		return "", blkid.Info{}, control.Errorf(control.CodeNotFound, "no disk %s in the VM (it has: %s)", dev, listOrNone(names))
	}
	if len(ds) == 0 {
		return "", blkid.Info{}, control.Errorf(control.CodeNotFound, "the VM has no disks: pass the drive to QEMU")
	}
	for _, d := range ds {
		in, err := blkid.Probe(ctx, a.deps.Run, d.Device)
		if err != nil {
			continue
		}
		if want == nil || want(in) {
			return d.Device, in, nil
		}
	}
	return "", blkid.Info{}, control.Errorf(noneCode, "%s", none)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func isLUKS(in blkid.Info) bool { return in.Type == "crypto_LUKS" }

func (a *Agent) probe(ctx context.Context) (any, error) {
	start := a.tl.Now()
	ds, err := a.disks()
	if err != nil {
		return nil, err
	}
	for i := range ds {
		d := &ds[i]
		in, err := blkid.Probe(ctx, a.deps.Run, d.Device)
		if err != nil {
			a.tl.Logf("warn", "cannot probe %s: %v", d.Device, err)
			continue
		}
		d.Type, d.Label, d.UUID = in.Type, in.Label, in.UUID
		if isLUKS(in) {
			info, err := a.crypt.Dump(ctx, d.Device, true)
			if err != nil {
				a.tl.Logf("warn", "cannot read the LUKS header of %s: %v", d.Device, err)
				continue
			}
			d.LUKS = info
		}
	}
	a.tl.Step("probe", start, "%d disk(s)", len(ds))
	return control.ProbeReply{Disks: ds}, nil
}

// kdfMemory is asked only when cryptsetup ran out of memory, to say how much is needed.
func (a *Agent) kdfMemory(ctx context.Context, dev string) cryptsetup.Memory {
	var m cryptsetup.Memory
	if a.deps.MemInfo != nil {
		m.HaveKiB, _ = a.deps.MemInfo()
	}
	if dev != "" {
		if info, err := a.crypt.Dump(ctx, dev, true); err == nil {
			m.NeedKiB = info.MaxMemoryKiB
		}
	}
	return m
}

func (a *Agent) unlock(ctx context.Context, r *control.Request) (any, error) {
	var req control.UnlockRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	if st := a.State(); st != control.StateReady && !(req.Continue && st == control.StateUnlocked && len(a.stk.locked) > 0) {
		return nil, a.badState("cannot unlock: a device is already unlocked or mounted")
	}
	a.stk.wantVolume(req.Stack)
	if req.Type != "" {
		return a.unlockOther(ctx, req, r.Secret) // BitLocker, VeraCrypt (stack_other.go)
	}
	if req.Header {
		return a.unlockDetached(ctx, req, r.Secret) // a detached LUKS header (header.go)
	}
	if rep, ok, err := a.unlockStack(ctx, req, r.Secret); ok {
		return rep, err // a layered drive (stack_unlock.go)
	}
	dev, in, err := a.pickDevice(ctx, req.Device, isLUKS, control.CodeNotEncrypted, "no disk in the VM is LUKS-encrypted; mount it without unlocking")
	if err != nil {
		return nil, err
	}
	hasMagic := isLUKS(in) || a.deps.HasMagic(dev)
	if !hasMagic {
		return nil, control.Errorf(control.CodeNotEncrypted, "%s is not LUKS-encrypted (blkid sees %s); mount it without unlocking", dev, typeOrNothing(in.Type))
	}
	if err := a.prepareCrypto(dev); err != nil {
		a.tl.Logf("warn", "unlock %s refused: %v", dev, err)
		return nil, err
	}
	start := a.tl.Now()
	p := a.startProgress("unlock", fmt.Sprintf("deriving the key for %s (takes a few seconds)", dev))
	err = a.crypt.OpenWith(ctx, dev, cryptsetup.OpenOptions{ReadOnly: req.ReadOnly, AllowDiscards: req.AllowDiscards}, r.Secret, hasMagic)
	p.stop()
	if err != nil {
		a.tl.Logf("warn", "unlock %s failed: %v", dev, err)
		return nil, err
	}
	a.mu.Lock()
	a.state, a.device, a.mapper, a.readOnly = control.StateUnlocked, dev, cryptsetup.MapperPath, req.ReadOnly
	a.mu.Unlock()
	a.tl.Step("unlock", start, "%s opened as %s%s%s", dev, cryptsetup.MapperPath, roNote(req.ReadOnly), discardNote(req.AllowDiscards))
	if err := a.afterUnlock(ctx); err != nil {
		return nil, err
	}
	return control.UnlockReply{Mapper: cryptsetup.MapperPath}, nil
}

func typeOrNothing(t string) string {
	if t == "" {
		return "nothing it recognises"
	}
	return t
}

func roNote(ro bool) string {
	if ro {
		return " (read-only)"
	}
	return ""
}

func (a *Agent) mount(ctx context.Context, r *control.Request) (any, error) {
	var req control.MountRequest
	mappingRO, done, err := a.beginUnmounted(r, &req, "cannot mount: a filesystem is already mounted")
	if err != nil {
		return nil, err
	}
	defer done()
	opts, err := a.deps.SplitOptions(req.Options)
	if err != nil {
		return nil, err
	}
	a.stk.wantVolume(req.Stack)
	src, err := a.resolveSource(ctx, req.Device, "mount it")
	if err != nil {
		return nil, err
	}
	dev, in := src.dev, src.in
	if in.Type == "" {
		// Guest device names mean nothing to the user: say what the drive holds instead.
		if src.mapped {
			return nil, a.emptyMapping()
		}
		return nil, control.Errorf(control.CodeUnsupportedFS, "the drive holds no LUKS header and no filesystem; it may be empty or damaged")
	}
	if !mountable(in.Type) {
		return nil, control.Errorf(control.CodeUnsupportedFS, "%s holds %s, which is not a mountable filesystem", dev, in.Type)
	}
	if (src.mapped && mappingRO) || a.diskReadOnly(dev) || src.roWhy != "" {
		if !opts.ReadOnly && src.roWhy == "" {
			a.tl.Logf("warn", "%s is read-only: mounting read-only", dev)
		}
		opts, _ = a.deps.SplitOptions(append(req.Options, "ro"))
	}
	if opts, err = a.mountGate(dev, in, opts, req.Options); err != nil {
		a.tl.Logf("warn", "mount refused: %v", err)
		return nil, err
	}
	start := a.tl.Now()
	if opts, err = a.mountFS(ctx, dev, in, req.Options, opts); err != nil {
		a.tl.Logf("warn", "mount failed: %v", err)
		return nil, mountFailed(in, err)
	}
	uid, gid, err := a.deps.RootOwner(fsops.Mountpoint)
	if err != nil {
		a.tl.Logf("warn", "cannot read the owner of the filesystem root: %v", err)
	}
	a.mu.Lock()
	if a.device == "" {
		a.device = dev
	}
	a.state, a.mountpoint, a.fstype, a.label, a.uuid, a.readOnly = control.StateMounted, fsops.Mountpoint, in.Type, in.Label, in.UUID, opts.ReadOnly
	a.mu.Unlock()
	a.tl.Step("mount", start, "%s (%s%s) on %s%s%s", dev, in.Type, labelNote(in.Label), fsops.Mountpoint, roNote(opts.ReadOnly), fsNote(in.Type))
	return control.MountReply{Mountpoint: fsops.Mountpoint, FSType: in.Type, Label: in.Label, UUID: in.UUID,
		ReadOnly: opts.ReadOnly, RootUID: uid, RootGID: gid, Notice: joinNotes(cmp.Or(src.roWhy, a.stk.notice[dev]), opts.Notice)}, nil
}

func labelNote(l string) string {
	if l == "" {
		return ""
	}
	return fmt.Sprintf(", %q", l)
}

// mountable filters out blkid types that are not filesystems.
func mountable(t string) bool {
	switch t {
	case "crypto_LUKS", "swap", "LVM2_member", "linux_raid_member", "zfs_member", "bcache", "BitLocker":
		return false
	}
	return true
}

func (a *Agent) diskReadOnly(dev string) bool {
	ds, err := a.deps.Disks()
	if err != nil {
		return false
	}
	for _, d := range ds {
		if d.Device == dev {
			return d.ReadOnly
		}
	}
	return false
}

// parseOwner reads ServeRequest.Owner into nfsserver options.
func parseOwner(owner string, o *nfsserver.Options) error {
	switch owner {
	case "":
		o.OwnerFromRoot = true
		return nil
	case "none":
		o.PassThroughIDs = true
		return nil
	}
	us, gs, ok := strings.Cut(owner, ":")
	u, uerr := strconv.ParseUint(us, 10, 32)
	g, gerr := strconv.ParseUint(gs, 10, 32)
	if !ok || uerr != nil || gerr != nil {
		return control.Errorf(control.CodeInvalidArgument, "owner %q must be UID:GID (numbers) or none", owner)
	}
	o.DriveUID, o.DriveGID = uint32(u), uint32(g)
	return nil
}

func (a *Agent) serve(ctx context.Context, r *control.Request) (any, error) {
	var req control.ServeRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	a.mu.Lock()
	st, root, ro := a.state, a.mountpoint, a.readOnly
	a.mu.Unlock()
	if st != control.StateMounted {
		if st == control.StateServing {
			return nil, a.badState("already serving")
		}
		return nil, a.badState("cannot serve: mount the filesystem first")
	}
	port := req.Port
	if port == 0 {
		port = 2049
	}
	if port < 0 || port > 65535 {
		return nil, control.Errorf(control.CodeInvalidArgument, "bad port %d", port)
	}
	opts := nfsserver.Options{Root: root, ReadOnly: ro, ClientUID: req.ClientUID, ClientGID: req.ClientGID, FixedAttrs: fixedAttrs(a.fstype), SyncDirs: ignoresDirsync(a.fstype),
		Logf: func(format string, args ...any) { a.tl.Logf("info", "nfs: "+format, args...) }}
	if err := parseOwner(req.Owner, &opts); err != nil {
		return nil, err
	}
	start := a.tl.Now()
	addr := fmt.Sprintf(":%d", port)
	srv, l, err := a.startNFS(opts, addr)
	if err != nil {
		return nil, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	a.mu.Lock()
	a.nfs, a.nfsStop, a.nfsDone = srv, stop, done
	a.state, a.serveAddr = control.StateServing, fmt.Sprintf("%s:%d", GuestIP, port)
	serveAddr := a.serveAddr
	a.mu.Unlock()
	go a.serveLoop(srv, l, opts, addr, stop, done)
	a.tl.Step("nfs", start, "NFSv3 listening on %s%s", serveAddr, roNote(ro))
	return control.ServeReply{Address: serveAddr, Export: "/"}, nil
}

func (a *Agent) startNFS(opts nfsserver.Options, addr string) (NFS, net.Listener, error) {
	srv, err := a.deps.NewNFS(opts)
	if err != nil {
		return nil, nil, control.Errorf(control.CodeInternal, "cannot start the NFS server: %v", err)
	}
	l, err := a.deps.Listen(addr)
	if err != nil {
		srv.Close()
		return nil, nil, control.Errorf(control.CodeInternal, "cannot listen on %s: %v", addr, err)
	}
	return srv, l, nil
}

// serveLoop runs the NFS server and restarts it within a second if it fails while not stopping.
func (a *Agent) serveLoop(srv NFS, l net.Listener, opts nfsserver.Options, addr string, stop, done chan struct{}) {
	defer close(done)
	for {
		err := safeServe(srv, l)
		select {
		case <-stop:
			return
		default:
		}
		a.tl.Logf("warn", "NFS server stopped unexpectedly (%v); restarting", err)
		srv.Close()
		l.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			var serr error
			srv, l, serr = a.startNFS(opts, addr)
			if serr == nil {
				break
			}
			a.tl.Logf("warn", "NFS restart failed: %v", serr)
		}
		a.mu.Lock()
		stopping := a.nfsStop != stop
		if !stopping {
			a.nfs = srv
		}
		a.mu.Unlock()
		if stopping {
			srv.Close()
			return
		}
		a.tl.Logf("info", "NFS server restarted")
	}
}

func safeServe(srv NFS, l net.Listener) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	err = srv.Serve(l)
	if err == nil {
		err = fmt.Errorf("server returned")
	}
	return err
}
