package supervisor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/fssniff"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/version"
)

// The steps of a session, in the order run calls them. Each leaves what it set up in s for the
// next step and for finish.

// openTarget opens and locks the target, checks the host does not use it, registers the session
// (refusing a target a live session holds) and opens the session log.
func (s *sup) openTarget() error {
	o := &s.opts
	dev, err := s.deps.Open(firstMember(o.Target), o.ReadOnly())
	if err != nil {
		return err
	}
	s.dev = dev
	if err := s.openMembers(); err != nil {
		return err
	}
	if s.deps.Host != nil {
		if err := s.deps.Host.CheckNotMounted(dev); err != nil {
			return err
		}
	}
	s.sess, err = s.deps.Registry.Create(session.State{
		Target:        s.targetPath(),
		State:         session.StateStarting,
		SupervisorPid: os.Getpid(),
		Started:       time.Now().UTC(),
		ReadOnly:      o.ReadOnly(),
	})
	if err != nil {
		return err
	}
	logPath := s.deps.LogPath(s.sess.State.ID)
	if s.openLog(logPath, o.chownUID(), o.GID) {
		s.update(func(st *session.State) { st.Log = logPath })
	}
	if s.deps.LogTee != nil {
		s.log.Tee(s.deps.LogTee)
	}
	s.log.Begin("luksmount %s: mount %s (%s)", version.String(), dev.Path, sizeString(dev.Size))
	if w := siblingWarning(dev); w != "" {
		s.log.Note(timelog.Host, "WARN: %s", w)
		s.progress("warning: %s", w)
	}
	return nil
}

// identify reads the header on the host, refuses what the guest could not mount before paying
// for a boot, and sizes the VM.
func (s *sup) identify() (vmSize, error) {
	dev := s.dev
	t := s.log.Start("read header")
	var err error
	if s.id, err = s.identity(); err != nil { // the target's header, or the --header file's (header.go)
		return vmSize{}, t.Done(err, "")
	}
	if s.id.Err != nil {
		return vmSize{}, t.Done(fmt.Errorf("%s: %w", dev.Path, s.id.Err), "")
	}
	if s.id.Kind == luksheader.KindUnknown || s.stack != nil {
		if err := s.identifyStack(); err != nil {
			return vmSize{}, t.Done(err, "")
		}
	}
	if dev.Size == 0 {
		return vmSize{}, t.Done(control.Errorf(control.CodeUnsupportedFS, "%s is empty (0 bytes): there is nothing to mount; check the path", dev.Path), "")
	}
	if s.opts.Crypt.Type == "tcrypt" && s.id.Kind != luksheader.KindUnknown {
		return vmSize{}, t.Done(control.Errorf(control.CodeInvalidArgument, "%s holds %s, not a VeraCrypt or TrueCrypt volume: drop --veracrypt/--truecrypt", dev.Path, s.id.Kind), "")
	}
	if s.id.Kind == luksheader.KindUnknown && s.stack == nil && s.opts.Crypt.Type == "" && fssniff.Type(dev.ReaderAt()) == "" {
		return vmSize{}, t.Done(control.Errorf(control.CodeUnsupportedFS, "%s holds neither a LUKS header nor a filesystem luksmount mounts (ext2/3/4, btrfs, xfs, exFAT, FAT, NTFS); nothing was changed (see `luksmount list` for the drives luksmount can open; a drive whose LUKS header is in a separate file needs --header FILE)", dev.Path), "")
	}
	encrypted := s.encrypted()
	kdfMiB, lanes := s.kdfNeeds()
	size := sizeForMount(kdfMiB, lanes, s.opts.MemoryMiB, s.opts.CPUs)
	t.Done(nil, "%s, label %q, KDF needs %d MiB in %d lanes; VM gets %d MiB, %d CPUs", s.stackLabel(), s.id.Label, kdfMiB, lanes, size.MemoryMiB, size.CPUs)
	s.update(func(st *session.State) {
		st.Encrypted, st.MemoryMiB, st.CPUs, st.Label = encrypted, size.MemoryMiB, size.CPUs, s.id.Label
	})
	if s.id.Kind.IsLUKS() && s.id.LUKS != nil {
		s.progress("%s: LUKS%d drive%s", dev.Path, s.id.LUKS.Version, labelSuffix(s.id.Label))
	}
	return size, nil
}

// readKeyFile reads --key-file before booting, so a typo fails fast (nil without one).
func (s *sup) readKeyFile() ([]byte, error) {
	if s.opts.KeyFile == "" {
		return nil, nil
	}
	return passphrase.ReadKeyFile(s.opts.KeyFile)
}

// bootWhileAsking boots the VM in the background while the user types the passphrase (when one
// is needed), then waits for the agent's Hello. It returns the first passphrase (the caller
// wipes it); from here on s.vm is set and finish powers it off.
func (s *sup) bootWhileAsking(ctx context.Context, size vmSize, ask bool) ([]byte, error) {
	s.progress("booting VM (%d MiB)...", size.MemoryMiB)
	t := s.log.Start("boot VM")
	bootCtx, cancelBoot := context.WithTimeout(ctx, bootTimeout)
	defer cancelBoot()
	booted := s.startBoot(bootCtx, s.bootSpec(size, s.sess.Dir, s.deps.LogPath(s.sess.State.ID)))
	var first []byte
	if ask && s.encrypted() {
		s.update(func(st *session.State) { st.State = session.StateUnlocking })
		var err error
		first, err = s.ui.Passphrase(ctx, fmt.Sprintf("Passphrase for %s: ", s.dev.Path), 1, MaxAttempts)
		if err != nil {
			cancelBoot()
			if b := <-booted; b.m != nil {
				s.vm = b.m
				s.powerOff(context.Background(), false)
			}
			return nil, s.passphraseInputError(err, 0)
		}
	}
	b := <-booted
	if b.err != nil {
		return first, t.Done(b.err, "")
	}
	s.setVM(b.m)
	if err := s.hello(ctx, t); err != nil {
		return first, err
	}
	s.update(func(st *session.State) { st.VMPid, st.Accel = s.vm.Pid(), s.vm.Accel() })
	s.progress("booted in %s", timelog.FormatDuration(t.Elapsed()))
	return first, nil
}

// export is what mountAndServe made available: the guest's NFS export behind addr.
type export struct {
	label, addr, path string
}

// mountAndServe mounts the filesystem in the guest and starts its NFS server.
func (s *sup) mountAndServe(ctx context.Context) (export, error) {
	o := &s.opts
	s.update(func(st *session.State) { st.State = session.StateMounting })
	t := s.log.Start("guest mount")
	mctx, cancel := context.WithTimeout(ctx, stepTimeout)
	mr, err := s.vm.Control().Mount(mctx, control.MountRequest{Options: o.MountOptions, Stack: s.stackRequest()})
	cancel()
	if err != nil {
		return export{}, t.Done(fmt.Errorf("cannot mount %s: %w", s.dev.Path, err), "")
	}
	t.Done(nil, "%s %q at %s (ro=%v)", mr.FSType, mr.Label, mr.Mountpoint, mr.ReadOnly)
	s.progress("mounted %s%s in %s", mr.FSType, labelSuffix(mr.Label), timelog.FormatDuration(t.Elapsed()))
	if mr.Notice != "" {
		s.progress("note: %s", mr.Notice)
		s.log.Note(timelog.Host, "WARN: %s", mr.Notice)
	}
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
		return export{}, t.Done(fmt.Errorf("cannot start the NFS server: %w", err), "")
	}
	addr := s.vm.NFSAddr()
	t.Done(nil, "guest %s export %s, host %s", sr.Address, sr.Export, addr)
	s.update(func(st *session.State) { st.NFSAddress, st.Export = addr, sr.Export })
	return export{label: label, addr: addr, path: sr.Export}, nil
}

// mountOnHost mounts the export on the host, unless asked not to or unable to (then it says how).
func (s *sup) mountOnHost(ctx context.Context, ex export) (Result, error) {
	res := Result{}
	canMount, why := false, "--no-mount was given"
	if !s.opts.NoMount && s.deps.Host != nil {
		canMount, why = s.deps.Host.CanMount()
		if !canMount {
			res.Notice = why + "; serving only"
		}
	}
	if canMount {
		if err := s.hostMount(ctx, ex.label, ex.addr, ex.path); err != nil {
			return res, err
		}
		s.update(func(st *session.State) { st.State = session.StateMounted })
		return res, nil
	}
	s.log.Note(timelog.Host, "not mounting on the host: %s", why)
	s.update(func(st *session.State) { st.State = session.StateServing })
	if s.deps.Host != nil {
		res.Hint = s.deps.Host.ServeOnlyHint(ex.addr, ex.path)
	}
	return res, nil
}

// up serves stop/status requests, hands back to the caller, and waits for the session's end.
func (s *sup) up(ctx context.Context, res Result, ready func(Result)) error {
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

func consoleLogFor(logPath string) string {
	if logPath == "" {
		return "" // no log, no console file (not ".console.log" in the working directory)
	}
	return strings.TrimSuffix(logPath, ".log") + ".console.log"
}
