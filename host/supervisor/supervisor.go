// Package supervisor owns one luksmount session: it opens and locks the target, sizes and boots the
// VM, unlocks (asking again after a wrong passphrase), mounts, serves NFS, mounts the export on the
// host, then watches for the unmount, a stop request or the VM's death, and shuts everything down
// cleanly: host unmount, guest sync/unmount/close, power-off, state removed.
//
// It runs in-process for --foreground and in the detached child otherwise; the UI interface is the
// only difference. Platform work (mount_nfs, /Volumes, unmount watching, booting QEMU) comes in
// through Deps, so the whole flow is unit-tested against a fake agent.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/version"
)

// MaxAttempts is how many passphrases are tried before giving up (cryptsetup's default too).
const MaxAttempts = 3

// Timeouts for guest steps. Unlock is long: argon2 with a large memory cost under TCG is slow.
var (
	bootTimeout     = 3 * time.Minute
	stepTimeout     = 2 * time.Minute
	unlockTimeout   = 10 * time.Minute
	shutdownTimeout = 2 * time.Minute
	exitTimeout     = 30 * time.Second
)

// Options is what the user asked for. It crosses the CLI->supervisor handoff as JSON: it never
// holds a secret.
type Options struct {
	Target       string   `json:"target"`
	Mountpoint   string   `json:"mountpoint,omitempty"` // "" = chosen from the label
	MountOptions []string `json:"mount_options,omitempty"`
	KeyFile      string   `json:"key_file,omitempty"`
	NoMount      bool     `json:"no_mount,omitempty"`
	MemoryMiB    int      `json:"memory_mib,omitempty"` // 0 = sized from the LUKS header
	CPUs         int      `json:"cpus,omitempty"`
	NFSOptions   []string `json:"nfs_options,omitempty"`
	Accel        string   `json:"accel,omitempty"` // auto, hvf, kvm, tcg
	Owner        string   `json:"owner,omitempty"` // "", "UID:GID" or "none"
	Foreground   bool     `json:"foreground,omitempty"`

	// The invoking user (behind sudo): NFS client identity and owner of the mount point and log.
	UID  int  `json:"uid"`
	GID  int  `json:"gid"`
	Sudo bool `json:"sudo,omitempty"`
}

// ReadOnly reports whether the user asked for a read-only mount.
func (o *Options) ReadOnly() bool {
	for _, opt := range o.MountOptions {
		if opt == "ro" {
			return true
		}
	}
	return false
}

func (o *Options) chownUID() int {
	if o.Sudo {
		return o.UID
	}
	return -1
}

// UI is how the supervisor talks to the user: the terminal in --foreground, the waiting CLI
// over the handoff socket otherwise.
type UI interface {
	// Progress shows one line of progress.
	Progress(line string)
	// Passphrase asks for the passphrase (attempt of max). The supervisor wipes what it gets.
	// passphrase.ErrNoInput means there is nothing more to try.
	Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error)
}

// Result describes a session that is up.
type Result struct {
	State session.State `json:"state"`
	// Hint, for a session that is served but not mounted, is the command that would mount it.
	Hint string `json:"hint,omitempty"`
	// Notice explains why the export was not mounted although the user did not ask for --no-mount.
	Notice string `json:"notice,omitempty"`
}

// Run runs a session to its end. ready is called once the drive is mounted (or served); Run then
// keeps the session until it is unmounted, stopped, or ctx ends (a clean stop too). The error is
// nil after a clean shutdown.
func Run(ctx context.Context, opts Options, deps Deps, ui UI, ready func(Result)) error {
	s := &sup{opts: opts, deps: deps, ui: ui, stopReq: make(chan stopRequest)}
	return s.run(ctx, ready)
}

type sup struct {
	opts Options
	deps Deps
	ui   UI
	log  *timelog.Log

	dev     *blockdev.Device
	id      *luksheader.Identity
	sess    *session.Session
	vm      Machine
	stMu    sync.Mutex // guards sess.State against the control socket's readers
	stopReq chan stopRequest

	seenSteps        map[string]bool // guest events already logged
	hostMounted      bool
	removeMountpoint func()
	faults           faultState // drive and filesystem faults (faults.go)
}

func (s *sup) progress(format string, args ...any) {
	s.ui.Progress(fmt.Sprintf(format, args...))
}

func (s *sup) update(fn func(*session.State)) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	if err := s.sess.Update(fn); err != nil {
		s.log.Note(timelog.Host, "WARN: %v", err)
	}
}

// setVM and machine guard s.vm, which the control socket's status handler reads.
func (s *sup) setVM(m Machine) {
	s.stMu.Lock()
	s.vm = m
	s.stMu.Unlock()
}

func (s *sup) machine() Machine {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	return s.vm
}

func (s *sup) state() session.State {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	return s.sess.State
}

func (s *sup) run(ctx context.Context, ready func(Result)) (err error) {
	o := &s.opts
	target := o.Target

	// 1. Open and lock the target, and check the host does not use it.
	dev, err := s.deps.Open(target, o.ReadOnly())
	if err != nil {
		return err
	}
	s.dev = dev
	defer dev.Close()
	if s.deps.Host != nil {
		if err := s.deps.Host.CheckNotMounted(dev); err != nil {
			return err
		}
	}

	// The session: refuses a target that a live session holds.
	s.sess, err = s.deps.Registry.Create(session.State{
		Target:        dev.Path,
		State:         session.StateStarting,
		SupervisorPid: os.Getpid(),
		Started:       time.Now().UTC(),
		ReadOnly:      o.ReadOnly(),
	})
	if err != nil {
		return err
	}
	defer s.sess.Close()

	logPath := s.deps.LogPath(s.sess.State.ID)
	if l, lerr := timelog.Open(logPath, o.chownUID(), o.GID); lerr == nil {
		s.log = l
		s.update(func(st *session.State) { st.Log = logPath })
	} else {
		s.log = timelog.New(discard{})
		s.progress("warning: no session log: %v", lerr)
	}
	defer s.log.Close()
	if s.deps.LogTee != nil {
		s.log.Tee(s.deps.LogTee)
	}
	s.log.Begin("luksmount %s: mount %s (%s)", version.String(), dev.Path, sizeString(dev.Size))
	defer func() {
		if err != nil {
			s.log.Note(timelog.Host, "session failed: %v", err)
		}
		s.log.Note(timelog.Host, "session ended after %s", timelog.FormatDuration(s.log.Since()))
	}()

	// 2. Read the header on the host to size the VM.
	t := s.log.Start("read header")
	s.id, err = luksheader.Identify(dev.ReaderAt())
	if err != nil {
		return t.Done(fmt.Errorf("cannot read %s: %w", dev.Path, err), "")
	}
	if s.id.Err != nil {
		return t.Done(fmt.Errorf("%s: %w", dev.Path, s.id.Err), "")
	}
	// Refuse what the guest could not mount before paying for a boot. The guest image mounts
	// LUKS and ext2/3/4 only; widen this with the image's filesystem modules.
	if dev.Size == 0 {
		return t.Done(control.Errorf(control.CodeUnsupportedFS, "%s is empty (0 bytes): there is nothing to mount; check the path", dev.Path), "")
	}
	if s.id.Kind == luksheader.KindUnknown {
		return t.Done(control.Errorf(control.CodeUnsupportedFS, "%s holds neither a LUKS header nor an ext2/3/4 filesystem; nothing was changed (see `luksmount list` for the drives luksmount can open)", dev.Path), "")
	}
	encrypted := s.id.Kind.IsLUKS()
	kdfMiB := int64(0)
	if encrypted {
		kdfMiB = (int64(s.id.LUKS.MaxKDFMemoryKiB()) + 1023) / 1024
	}
	mem := qemu.MemoryForKDF(kdfMiB)
	if o.MemoryMiB > 0 {
		mem = o.MemoryMiB
	}
	cpus := o.CPUs
	if cpus <= 0 {
		cpus = 1
		if kdfMiB > 0 {
			cpus = 2 // argon2 uses parallel lanes
		}
	}
	t.Done(nil, "%s, label %q, KDF needs %d MiB; VM gets %d MiB, %d CPUs", s.id.Kind, s.id.Label, kdfMiB, mem, cpus)
	s.update(func(st *session.State) {
		st.Encrypted, st.MemoryMiB, st.CPUs, st.Label = encrypted, mem, cpus, s.id.Label
	})
	if encrypted {
		s.progress("%s: LUKS%d drive%s", dev.Path, s.id.LUKS.Version, labelSuffix(s.id.Label))
	}

	// The key file, read before booting so a typo fails fast.
	var keyFile []byte
	if o.KeyFile != "" {
		keyFile, err = passphrase.ReadKeyFile(o.KeyFile)
		if err != nil {
			return err
		}
		defer passphrase.Wipe(keyFile)
	}

	// 3-4. Boot the VM in the background while the user types the passphrase.
	s.progress("booting VM (%d MiB)...", mem)
	bootT := s.log.Start("boot VM")
	type booted struct {
		m   Machine
		err error
	}
	bootCh := make(chan booted, 1)
	bootCtx, cancelBoot := context.WithTimeout(ctx, bootTimeout)
	defer cancelBoot()
	go func() {
		m, err := s.deps.Boot(bootCtx, BootSpec{
			Device: dev, MemoryMiB: mem, CPUs: cpus, Accel: o.Accel,
			SessionDir: s.sess.Dir, OnEvent: s.onEvent, OnQMPEvent: s.onQMPEvent,
			ConsoleLog: strings.TrimSuffix(logPath, ".log") + ".console.log",
			Logf:       func(format string, args ...any) { s.log.Note(timelog.Host, format, args...) },
		})
		bootCh <- booted{m, err}
	}()
	var first []byte
	if encrypted && keyFile == nil {
		s.update(func(st *session.State) { st.State = session.StateUnlocking })
		first, err = s.ui.Passphrase(ctx, fmt.Sprintf("Passphrase for %s: ", dev.Path), 1, MaxAttempts)
		if err != nil {
			cancelBoot()
			if b := <-bootCh; b.m != nil {
				s.vm = b.m
				s.powerOff(context.Background(), false)
			}
			return s.passphraseInputError(err, 0)
		}
	}
	defer passphrase.Wipe(first)
	b := <-bootCh
	if b.err != nil {
		return bootT.Done(fmt.Errorf("%w: %w", ErrBoot, b.err), "")
	}
	s.setVM(b.m)
	// From here on, every exit path powers the VM off.
	defer func() {
		if s.vm != nil {
			s.powerOff(context.Background(), err != nil)
		}
	}()
	hctx, cancel := context.WithTimeout(ctx, stepTimeout)
	hello, err := s.vm.Control().Hello(hctx, version.String())
	cancel()
	if err != nil {
		return bootT.Done(fmt.Errorf("%w: the guest agent did not answer: %w", ErrBoot, err), "")
	}
	bootT.Done(nil, "qemu pid %d, kernel %s, agent %s", s.vm.Pid(), hello.Kernel, hello.AgentVersion)
	for _, ev := range hello.Timeline {
		s.log.Guest(ev)
	}
	s.update(func(st *session.State) { st.VMPid, st.Accel = s.vm.Pid(), s.vm.Accel() })
	s.progress("booted in %s", timelog.FormatDuration(bootT.Elapsed()))

	// Unlock.
	if encrypted {
		if err := s.unlock(ctx, first, keyFile, mem, kdfMiB); err != nil {
			return err
		}
	}

	// Mount and serve in the guest.
	s.update(func(st *session.State) { st.State = session.StateMounting })
	t = s.log.Start("guest mount")
	mctx, cancel := context.WithTimeout(ctx, stepTimeout)
	mr, err := s.vm.Control().Mount(mctx, control.MountRequest{Options: o.MountOptions})
	cancel()
	if err != nil {
		return t.Done(fmt.Errorf("cannot mount %s: %w", dev.Path, err), "")
	}
	t.Done(nil, "%s %q at %s (ro=%v)", mr.FSType, mr.Label, mr.Mountpoint, mr.ReadOnly)
	s.progress("mounted %s%s in %s", mr.FSType, labelSuffix(mr.Label), timelog.FormatDuration(t.Elapsed()))
	label := mr.Label
	if label == "" {
		label = s.id.Label
	}
	s.update(func(st *session.State) { st.FSType, st.Label, st.ReadOnly = mr.FSType, label, mr.ReadOnly })

	t = s.log.Start("guest NFS server")
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	sr, err := s.vm.Control().Serve(sctx, control.ServeRequest{
		ClientUID: uint32(o.UID), ClientGID: uint32(o.GID), Owner: o.Owner,
	})
	cancel()
	if err != nil {
		return t.Done(fmt.Errorf("cannot start the NFS server: %w", err), "")
	}
	addr := s.vm.NFSAddr()
	t.Done(nil, "guest %s export %s, host %s", sr.Address, sr.Export, addr)
	s.update(func(st *session.State) { st.NFSAddress, st.Export = addr, sr.Export })

	// 5. Mount on the host, unless asked not to or unable to.
	res := Result{}
	canMount, why := false, "--no-mount was given"
	if !o.NoMount && s.deps.Host != nil {
		canMount, why = s.deps.Host.CanMount()
		if !canMount {
			res.Notice = why + "; serving only"
		}
	}
	if canMount {
		if err := s.hostMount(ctx, label, addr, sr.Export); err != nil {
			return err
		}
		s.update(func(st *session.State) { st.State = session.StateMounted })
	} else {
		s.log.Note(timelog.Host, "not mounting on the host: %s", why)
		s.update(func(st *session.State) { st.State = session.StateServing })
		if s.deps.Host != nil {
			res.Hint = s.deps.Host.ServeOnlyHint(addr, sr.Export)
		}
	}

	// 6. Up: serve stop/status requests, hand back, and wait.
	lctx, stopListening := context.WithCancel(context.Background())
	defer stopListening()
	if err := s.listen(lctx); err != nil {
		s.log.Note(timelog.Host, "WARN: no control socket (stop will need --force): %v", err)
	}
	res.State = s.state()
	s.log.Note(timelog.Host, "up after %s", timelog.FormatDuration(s.log.Since()))
	ready(res)
	return s.wait(ctx)
}

// unlock tries the first passphrase (or the key file), asking again after a wrong one.
func (s *sup) unlock(ctx context.Context, first, keyFile []byte, mem int, kdfMiB int64) error {
	ro := s.opts.ReadOnly()
	secret, isKeyFile := first, false
	if keyFile != nil {
		secret, isKeyFile = keyFile, true
	}
	for attempt := 1; ; attempt++ {
		s.update(func(st *session.State) { st.State = session.StateUnlocking })
		s.progress("unlocking: deriving key, this takes a few seconds by design...")
		if note := kdfNote(s.id.LUKS); note != "" && attempt == 1 {
			s.progress("  %s", note)
			s.log.Note(timelog.Host, "unlock: %s", note)
		}
		t := s.log.Start("unlock")
		uctx, cancel := context.WithTimeout(ctx, unlockTimeout)
		r, err := s.vm.Control().Unlock(uctx, control.UnlockRequest{ReadOnly: ro, KeyFile: isKeyFile}, secret)
		cancel()
		if !isKeyFile {
			passphrase.Wipe(secret) // the first one too: run's deferred wipe is a second line of defence
		}
		if err == nil {
			t.Done(nil, "attempt %d: %s", attempt, r.Mapper)
			s.progress("unlocked in %s", timelog.FormatDuration(t.Elapsed()))
			return nil
		}
		t.Done(err, "attempt %d", attempt)
		switch {
		case errors.Is(err, control.ErrWrongPassphrase) && !isKeyFile && attempt < MaxAttempts:
			s.progress("wrong passphrase (attempt %d of %d)", attempt, MaxAttempts)
			next, perr := s.ui.Passphrase(ctx, fmt.Sprintf("Passphrase for %s (attempt %d of %d): ", s.dev.Path, attempt+1, MaxAttempts), attempt+1, MaxAttempts)
			if perr != nil {
				return s.passphraseInputError(perr, attempt)
			}
			secret = next
		case errors.Is(err, control.ErrWrongPassphrase):
			return &PassphraseError{Target: s.dev.Path, Attempts: attempt, KeyFile: isKeyFile}
		case errors.Is(err, control.ErrOutOfMemory):
			return &MemoryError{Target: s.dev.Path, KDFMiB: kdfMiB, VMMiB: mem, Err: err}
		default:
			return fmt.Errorf("cannot unlock %s: %w", s.dev.Path, err)
		}
	}
}

// passphraseInputError turns "no more input" after tries wrong passphrases into the right error.
func (s *sup) passphraseInputError(err error, tries int) error {
	if errors.Is(err, passphrase.ErrNoInput) && tries > 0 {
		return &PassphraseError{Target: s.dev.Path, Attempts: tries}
	}
	if errors.Is(err, passphrase.ErrNoInput) {
		return fmt.Errorf("%w for %s", ErrNoPassphrase, s.dev.Path)
	}
	return err
}

func (s *sup) hostMount(ctx context.Context, label, addr, export string) error {
	o := &s.opts
	h := s.deps.Host
	t := s.log.Start("host mount")
	mp := o.Mountpoint
	var err error
	mp, s.removeMountpoint, err = h.PrepareMountpoint(mp, label, o.UID, o.GID)
	if err != nil {
		return t.Done(fmt.Errorf("%w: %w", ErrHostMount, err), "")
	}
	if err := h.Mount(ctx, addr, export, mp, o.NFSOptions, o.UID, o.GID); err != nil {
		s.cleanMountpoint()
		return t.Done(fmt.Errorf("%w: %w", ErrHostMount, err), "")
	}
	s.hostMounted = true
	s.update(func(st *session.State) { st.Mountpoint = mp })
	t.Done(nil, "%s:%s on %s", addr, export, mp)
	s.progress("mounted on %s in %s", mp, timelog.FormatDuration(t.Elapsed()))
	return nil
}

func (s *sup) cleanMountpoint() {
	if s.removeMountpoint != nil {
		s.removeMountpoint()
		s.removeMountpoint = nil
	}
}

// wait keeps the session until it ends, then shuts down.
func (s *sup) wait(ctx context.Context) error {
	var unmounted <-chan error
	wctx, cancelWatch := context.WithCancel(context.Background())
	defer cancelWatch()
	if s.hostMounted {
		unmounted = s.deps.Host.WatchUnmount(wctx, s.state().Mountpoint)
	}
	for {
		select {
		case what := <-s.driveLostCh():
			return s.driveLost(ctx, what)
		case <-s.vm.Done():
			return s.vmDied()
		case werr := <-unmounted:
			unmounted = nil
			if werr != nil {
				s.log.Note(timelog.Host, "WARN: cannot watch the mount point (%v); stop with `luksmount stop`", werr)
				continue
			}
			s.hostMounted = false
			s.log.Note(timelog.Host, "%s was unmounted on the host", s.state().Mountpoint)
			return s.shutdown(false)
		case req := <-s.stopReq:
			err := s.shutdownFor(req.force)
			req.reply <- err
			if err == nil || req.force {
				return err
			}
			// Not stopped (the mount point is busy): keep serving.
		case <-ctx.Done():
			s.log.Note(timelog.Host, "interrupted: stopping")
			err := s.shutdownFor(false)
			if err == nil {
				return nil
			}
			s.progress("%v", err)
			ctx = context.Background() // a second signal is not watched: use stop --force
		}
	}
}

// shutdownFor handles a stop request: unmount on the host first (a busy mount point refuses a
// clean stop), then the guest.
func (s *sup) shutdownFor(force bool) error {
	if s.hostMounted {
		mp := s.state().Mountpoint
		t := s.log.Start("host unmount")
		err := s.deps.Host.Unmount(context.Background(), mp, false)
		if err != nil && !force {
			t.Done(err, "%s", mp)
			return fmt.Errorf("%w: %s: %w", ErrMountBusy, mp, err)
		}
		if err != nil {
			err = s.deps.Host.Unmount(context.Background(), mp, true)
		}
		t.Done(err, "%s (force=%v)", mp, force)
		s.hostMounted = err != nil
	}
	return s.shutdown(force)
}

// shutdown asks the guest to sync, unmount and close, and powers the VM off.
func (s *sup) shutdown(force bool) error {
	s.update(func(st *session.State) { st.State = session.StateStopping })
	err := s.powerOff(context.Background(), force)
	s.cleanMountpoint()
	return err
}

// powerOff shuts the guest down cleanly (unless the VM is already gone), waits for QEMU to exit and
// kills it if it does not.
func (s *sup) powerOff(ctx context.Context, force bool) error {
	if s.vm == nil {
		return nil
	}
	m := s.vm
	s.setVM(nil)
	var err error
	select {
	case <-m.Done():
	default:
		t := s.log.Start("guest shutdown")
		sctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
		r, serr := m.Control().Shutdown(sctx, control.ShutdownRequest{Force: force})
		cancel()
		if serr == nil {
			for _, ev := range r.Steps {
				if !s.seen(ev) { // normally already streamed as events
					s.log.Guest(ev)
				}
			}
			t.Done(nil, "synced=%v unmounted=%v closed=%v", r.Synced, r.Unmounted, r.Closed)
			if !r.Unmounted || !r.Closed {
				err = fmt.Errorf("%w: the guest reported synced=%v unmounted=%v closed=%v", ErrUncleanShutdown, r.Synced, r.Unmounted, r.Closed)
			}
		} else {
			t.Done(serr, "")
			err = fmt.Errorf("%w: %w", ErrUncleanShutdown, serr)
		}
	}
	t := s.log.Start("VM exit")
	select {
	case <-m.Done():
		t.Done(nil, "qemu pid %d exited", m.Pid())
	case <-time.After(exitTimeout):
		kerr := m.Kill()
		<-m.Done()
		t.Done(fmt.Errorf("did not power off within %s: killed (%v)", exitTimeout, kerr), "")
	}
	return err
}

// vmDied handles the VM exiting on its own: force-unmount the stale host mount and say why.
func (s *sup) vmDied() error {
	m := s.vm
	s.setVM(nil)
	why := m.Err()
	s.log.Note(timelog.Host, "ERROR: the VM (qemu pid %d) exited unexpectedly: %v", m.Pid(), why)
	if s.hostMounted {
		mp := s.state().Mountpoint
		t := s.log.Start("force unmount")
		uerr := s.deps.Host.Unmount(context.Background(), mp, true)
		t.Done(uerr, "stale mount %s", mp)
		s.hostMounted = uerr != nil
	}
	s.cleanMountpoint()
	if why == nil {
		why = errors.New("no exit status")
	}
	return fmt.Errorf("%w: %w", ErrVMDied, why)
}

// onEvent receives the agent's events: all go to the log; progress notes also to the user.
func (s *sup) onEvent(ev control.Event) {
	s.stMu.Lock()
	if s.seenSteps == nil {
		s.seenSteps = map[string]bool{}
	}
	s.seenSteps[stepKey(ev)] = true
	s.stMu.Unlock()
	if s.log != nil {
		s.log.Guest(ev)
	}
	s.guestFault(ev)
	if ev.Kind == control.EventProgress && ev.Message != "" {
		s.ui.Progress("  " + ev.Message)
	}
}

func stepKey(ev control.Event) string { return fmt.Sprintf("%s@%.3f", ev.Step, ev.Time) }

func (s *sup) seen(ev control.Event) bool {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	return s.seenSteps[stepKey(ev)]
}

func labelSuffix(label string) string {
	if label == "" {
		return ""
	}
	return fmt.Sprintf(" %q", label)
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%d MiB", n>>20)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// SplitOptions splits comma-separated option lists, dropping empties.
func SplitOptions(lists []string) []string {
	var out []string
	for _, l := range lists {
		for _, o := range strings.Split(l, ",") {
			if o = strings.TrimSpace(o); o != "" {
				out = append(out, o)
			}
		}
	}
	return out
}
