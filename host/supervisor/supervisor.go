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
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
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
	Discard      bool     `json:"discard,omitempty"` // TRIM passes to the drive (dm-crypt, virtio-blk, QEMU)
	// Volume names the filesystem of a layered drive (vg/lv, p2, md/name, a label); AllowDegraded
	// assembles a RAID array missing members read-write.
	Volume        string `json:"volume,omitempty"`
	AllowDegraded bool   `json:"allow_degraded,omitempty"`
	// Crypt is BitLocker (detected) or VeraCrypt/TrueCrypt (asked for) instead of LUKS.
	Crypt control.Crypt `json:"crypt,omitempty"`
	// Header is a detached LUKS header file (--header): Target then holds only the data.
	Header string `json:"header,omitempty"`

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
	header  *blockdev.Device // the --header file, read-only (header.go)
	id      *luksheader.Identity
	sess    *session.Session
	vm      Machine
	stMu    sync.Mutex // guards sess.State against the control socket's readers
	stopReq chan stopRequest
	// answer, once a stop request has ended the session, replies to it: run calls it last, after
	// the VM is gone, the drive flushed and the session closed, so "stopped" is the truth.
	answer func(error)

	seenSteps        map[string]bool // guest events already logged
	hostMounted      bool
	removeMountpoint func()
	faults           faultState // drive and filesystem faults (faults.go)
	stack            *stackInfo // a layered or multi-device target (stack_steps.go)
	booted           bootRecord // the VM booted last: its console and size (lowmem.go)
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

// run is the session, step by step (steps.go). finish undoes what the steps set up.
func (s *sup) run(ctx context.Context, ready func(Result)) (err error) {
	defer func() { s.finish(err) }()
	if err := s.openTarget(); err != nil {
		return err
	}
	size, err := s.identify()
	if err != nil {
		return err
	}
	keyFile, err := s.readKeyFile()
	if err != nil {
		return err
	}
	defer passphrase.Wipe(keyFile)
	first, err := s.bootWhileAsking(ctx, size, keyFile == nil || s.opts.Crypt.Type == "tcrypt")
	defer passphrase.Wipe(first) // unlock wipes it; this is a second line of defence
	if err != nil {
		return err
	}
	if need, err := s.needsUnlock(ctx); err != nil {
		return err
	} else if need {
		if first == nil && keyFile == nil {
			if first, err = s.askFirst(ctx); err != nil {
				return err
			}
		}
		if err := s.unlock(ctx, first, keyFile, size.MemoryMiB, size.KDFMiB); err != nil {
			return err
		}
	}
	ex, err := s.mountAndServe(ctx)
	if err != nil {
		return err
	}
	res, err := s.mountOnHost(ctx, ex)
	if err != nil {
		return err
	}
	return s.up(ctx, res, ready)
}

// finish ends the session in order: the VM powered off (the drive flushed), the log closed, the
// session and the target released; a stop request that ended it is answered last, so "stopped"
// is only said once all of that is true.
func (s *sup) finish(err error) {
	if s.vm != nil {
		s.powerOff(context.Background(), err != nil)
	}
	if s.log != nil {
		if err != nil {
			s.log.Note(timelog.Host, "session failed: %v", err)
		}
		s.log.Note(timelog.Host, "session ended after %s", timelog.FormatDuration(s.log.Since()))
		s.log.Close()
	}
	if s.sess != nil {
		s.sess.Close()
	}
	if s.dev != nil {
		s.dev.Close()
	}
	s.header.Close()
	s.closeMembers()
	if s.answer != nil {
		s.answer(err)
	}
}

// unlock tries the first passphrase (or the key file), asking again after a wrong one.
func (s *sup) unlock(ctx context.Context, first, keyFile []byte, mem int, kdfMiB int64) error {
	ro := s.opts.ReadOnly()
	secret, isKeyFile := first, false
	if keyFile != nil && s.opts.Crypt.Type != "tcrypt" { // VeraCrypt mixes it with the password
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
		sent, crypt, err := s.tcryptSecret(uctx, secret, keyFile, attempt)
		if err != nil {
			cancel()
			t.Done(err, "attempt %d", attempt)
			return err
		}
		req := control.UnlockRequest{ReadOnly: ro, KeyFile: isKeyFile, AllowDiscards: s.opts.Discard, Stack: s.stackRequest(), Crypt: crypt, Partial: s.stack != nil, Header: s.header != nil}
		r, err := s.vm.Control().Unlock(uctx, req, sent)
		cancel()
		if !isKeyFile {
			passphrase.Wipe(secret) // the first one too: run's deferred wipe is a second line of defence
			passphrase.Wipe(sent)
		}
		if err == nil {
			t.Done(nil, "attempt %d: %s", attempt, r.Mapper)
			if len(r.Locked) > 0 { // members with passphrases of their own (stack_unlock_more.go)
				if err := s.unlockLocked(ctx, req, r.Locked); err != nil {
					return err
				}
			}
			s.progress("unlocked in %s", timelog.FormatDuration(t.Elapsed()))
			return nil
		}
		t.Done(err, "attempt %d", attempt)
		switch {
		case errors.Is(err, control.ErrWrongPassphrase) && !isKeyFile && attempt < MaxAttempts:
			s.progress("wrong %s (attempt %d of %d)", cmp.Or(s.secretName(), "passphrase"), attempt, MaxAttempts)
			next, perr := s.ui.Passphrase(ctx, fmt.Sprintf("Passphrase for %s (attempt %d of %d): ", s.dev.Path, attempt+1, MaxAttempts), attempt+1, MaxAttempts)
			if perr != nil {
				return s.passphraseInputError(perr, attempt)
			}
			secret = next
		case errors.Is(err, control.ErrWrongPassphrase):
			return &PassphraseError{Target: s.dev.Path, Attempts: attempt, KeyFile: isKeyFile, What: s.secretName()}
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
		return &PassphraseError{Target: s.dev.Path, Attempts: tries, What: s.secretName()}
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
	created := mp == ""
	if !created {
		_, serr := os.Stat(mp)
		created = serr != nil
	}
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
	s.update(func(st *session.State) { st.Mountpoint, st.MountpointCreated = mp, created })
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
			if !errors.Is(err, ErrMountBusy) || req.force {
				s.answer = req.answer // after the session has closed
				return err
			}
			req.answer(err) // not stopped (the mount point is busy): keep serving
		case <-ctx.Done():
			s.log.Note(timelog.Host, "interrupted: stopping")
			err := s.shutdownFor(false)
			if !errors.Is(err, ErrMountBusy) {
				return err
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
		// The Machine's Shutdown, not the agent's alone: it marks the exit as requested and
		// escalates (ACPI, QMP quit, kill) if the agent does not power off.
		r, serr := m.Shutdown(sctx, force)
		cancel()
		if r != nil {
			for _, ev := range r.Steps {
				if !s.seen(ev) { // normally already streamed as events
					s.log.Guest(ev)
				}
			}
		}
		switch {
		case serr != nil:
			t.Done(serr, "")
			err = fmt.Errorf("%w: %w", ErrUncleanShutdown, serr)
		case r == nil:
			t.Done(nil, "the VM was already gone")
		default:
			t.Done(nil, "synced=%v unmounted=%v closed=%v", r.Synced, r.Unmounted, r.Closed)
			if !r.Unmounted || !r.Closed {
				err = fmt.Errorf("%w: the guest reported synced=%v unmounted=%v closed=%v", ErrUncleanShutdown, r.Synced, r.Unmounted, r.Closed)
			}
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
	if ferr := s.flushDrive(); err == nil {
		err = ferr
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
		uerr := s.deps.Host.ForceUnmount(context.Background(), mp) // no plain umount: it would wait on the dead server
		t.Done(uerr, "stale mount %s", mp)
		s.hostMounted = uerr != nil
	}
	s.cleanMountpoint()
	if ferr := s.flushDrive(); ferr != nil {
		s.log.Note(timelog.Host, "WARN: %v", ferr)
	}
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
