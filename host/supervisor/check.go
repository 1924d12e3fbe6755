package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/version"
)

// CheckOptions describe a `luksmount check`.
type CheckOptions struct {
	Target    string
	Repair    bool // after a read-only check that finds problems, ask, then let the tool fix them
	KeyFile   string
	MemoryMiB int
	CPUs      int
	Accel     string
	UID, GID  int
	Sudo      bool
}

// CheckUI is how a check talks to the user: progress, the passphrase, and the yes/no before a
// repair writes to the drive.
type CheckUI interface {
	Progress(line string)
	Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error)
	// Confirm asks question and reports the answer (false on anything but yes).
	Confirm(question string) (bool, error)
}

// CheckResult is what the check found and did.
type CheckResult struct {
	FSType   string
	Clean    bool // the first, read-only pass found nothing
	Repaired bool
	Output   string // the checker's report (of the repair, if one ran)
}

// ErrNotRepaired is returned when problems were found and not repaired (no --repair, or the user
// said no); it matches control.ErrNeedsRepair for the exit code.
var ErrNotRepaired = &control.Error{Code: control.CodeNeedsRepair, Message: "problems found, not repaired"}

// Check boots a VM on the (unmounted) target, unlocks it read-only (read-write with Repair) and
// runs the filesystem's checker read-only: e2fsck -n, xfs_repair -n, btrfs check --readonly.
// With Repair and problems found, it asks, then runs the repairing pass.
func Check(ctx context.Context, o CheckOptions, deps Deps, ui CheckUI) (res *CheckResult, err error) {
	dev, err := deps.Open(o.Target, !o.Repair)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	if deps.Host != nil {
		if err := deps.Host.CheckNotMounted(dev); err != nil {
			return nil, err
		}
	}
	id, err := luksheader.Identify(dev.ReaderAt())
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", dev.Path, err)
	}
	if id.Err != nil {
		return nil, fmt.Errorf("%s: %w", dev.Path, id.Err)
	}
	// The steps every VM of the supervisor goes through (vmsteps.go): log, size, boot and Hello,
	// and a deferred power-off that sees the error the check ends with.
	s := &sup{opts: Options{Accel: o.Accel}, deps: deps, ui: ui, dev: dev, log: timelog.New(discard{})}
	logPath := ""
	if deps.LogPath != nil {
		logPath = deps.LogPath(session.ID(dev.Path))
		uid := -1
		if o.Sudo {
			uid = o.UID
		}
		s.openLog(logPath, uid, o.GID)
	}
	log := s.log
	defer log.Close()
	mode := "read-only"
	if o.Repair {
		mode = "repair if asked"
	}
	log.Begin("luksmount %s: check %s (%s)", version.String(), dev.Path, mode)
	defer func() {
		if err != nil && !errors.Is(err, ErrNotRepaired) {
			log.Note(timelog.Host, "check failed: %v", err)
		}
	}()

	var keyFile []byte
	if o.KeyFile != "" {
		if keyFile, err = passphrase.ReadKeyFile(o.KeyFile); err != nil {
			return nil, err
		}
		defer passphrase.Wipe(keyFile)
	}
	kdfMiB, lanes := kdfNeeds(id)
	tmp, err := os.MkdirTemp("", "luksmount-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	defer func() { s.powerOff(context.Background(), err != nil) }()
	if err := s.bootAndHello(ctx, sizeForMount(kdfMiB, lanes, o.MemoryMiB, o.CPUs), tmp, logPath); err != nil {
		return nil, err
	}
	m := s.vm

	if id.Kind.IsLUKS() {
		if note := kdfNote(id.LUKS); note != "" {
			ui.Progress("unlocking: " + note)
		}
		if err := checkUnlock(ctx, m, log, ui, dev.Path, !o.Repair, keyFile); err != nil {
			return nil, err
		}
	}

	return s.checkPasses(ctx, o, ui)
}

// checkPasses runs the read-only pass on the booted VM and, with o.Repair and problems found,
// asks, then the repairing pass. It powers the VM off cleanly once the checker has answered; on
// an error Check's deferred power-off (forced) does.
func (s *sup) checkPasses(ctx context.Context, o CheckOptions, ui CheckUI) (res *CheckResult, err error) {
	m, log, dev := s.vm, s.log, s.dev
	run := func(repair bool) (*control.CheckReply, error) {
		t := log.Start("check")
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		rep, err := m.Control().Check(cctx, control.CheckRequest{Repair: repair})
		if err != nil {
			return nil, t.Done(fmt.Errorf("cannot check %s: %w", dev.Path, err), "")
		}
		t.Done(nil, "%s: clean=%v repaired=%v exit %d", rep.Tool, rep.Clean, rep.Repaired, rep.ExitCode)
		log.Note(timelog.Host, "%s output:\n%s", rep.Tool, rep.Output)
		return rep, nil
	}
	rep, err := run(false)
	if err != nil {
		return nil, err
	}
	res = &CheckResult{FSType: rep.FSType, Clean: rep.Clean, Output: rep.Output}
	if rep.Clean {
		return res, s.powerOff(ctx, false)
	}
	if !o.Repair {
		s.powerOff(ctx, false)
		return res, fmt.Errorf("%w: the %s filesystem on %s has problems (%s exited %d); nothing was changed: repair it with `luksmount check --repair %s` (it asks before writing)",
			ErrNotRepaired, typeName(rep.FSType), dev.Path, toolName(rep.Tool), rep.ExitCode, dev.Path)
	}
	if rep.NoRepair != "" {
		// Asking "Repair them now?" first would promise what the guest then refuses.
		log.Note(timelog.Host, "repair refused by the guest: %s", rep.NoRepair)
		s.powerOff(ctx, false)
		return res, fmt.Errorf("%w: %s found problems on %s; %s", ErrNotRepaired, toolName(rep.Tool), dev.Path, rep.NoRepair)
	}
	ok, err := ui.Confirm(fmt.Sprintf("%s found problems on %s (above). Repair them now? This writes to the drive; back up what you can first if the data matters. [y/N] ",
		toolName(rep.Tool), dev.Path))
	if err != nil || !ok {
		log.Note(timelog.Host, "repair declined")
		s.powerOff(ctx, false)
		return res, fmt.Errorf("%w: repair declined; nothing was changed", ErrNotRepaired)
	}
	rep, err = run(true)
	if err != nil {
		return nil, err
	}
	res.Repaired, res.Output = rep.Repaired || rep.Clean, rep.Output
	if !res.Repaired {
		s.powerOff(ctx, false)
		return res, fmt.Errorf("%w: %s could not repair everything (exit %d); see `luksmount log %s`", ErrNotRepaired, toolName(rep.Tool), rep.ExitCode, dev.Path)
	}
	return res, s.powerOff(ctx, false)
}

// checkTimeout bounds one checker run: a full e2fsck of a large, damaged drive takes hours.
var checkTimeout = 24 * time.Hour

// checkUnlock opens the mapping for a check (three passphrase tries, or the key file).
func checkUnlock(ctx context.Context, m Machine, log *timelog.Log, ui CheckUI, path string, ro bool, keyFile []byte) error {
	for attempt := 1; ; attempt++ {
		secret, isKeyFile := keyFile, keyFile != nil
		if !isKeyFile {
			prompt := fmt.Sprintf("Passphrase for %s: ", path)
			if attempt > 1 {
				prompt = fmt.Sprintf("Passphrase for %s (attempt %d of %d): ", path, attempt, MaxAttempts)
			}
			p, err := ui.Passphrase(ctx, prompt, attempt, MaxAttempts)
			if errors.Is(err, passphrase.ErrNoInput) && attempt > 1 {
				return &PassphraseError{Target: path, Attempts: attempt - 1}
			}
			if errors.Is(err, passphrase.ErrNoInput) {
				return fmt.Errorf("%w for %s", ErrNoPassphrase, path)
			}
			if err != nil {
				return err
			}
			secret = p
		}
		t := log.Start("unlock")
		uctx, cancel := context.WithTimeout(ctx, unlockTimeout)
		_, err := m.Control().Unlock(uctx, control.UnlockRequest{ReadOnly: ro, KeyFile: isKeyFile}, secret)
		cancel()
		if !isKeyFile {
			passphrase.Wipe(secret)
		}
		t.Done(err, "attempt %d (read-only=%v)", attempt, ro)
		switch {
		case err == nil:
			ui.Progress(fmt.Sprintf("unlocked in %s", timelog.FormatDuration(t.Elapsed())))
			return nil
		case errors.Is(err, control.ErrWrongPassphrase) && !isKeyFile && attempt < MaxAttempts:
			ui.Progress(fmt.Sprintf("wrong passphrase (attempt %d of %d)", attempt, MaxAttempts))
		case errors.Is(err, control.ErrWrongPassphrase):
			return &PassphraseError{Target: path, Attempts: attempt, KeyFile: isKeyFile}
		default:
			return fmt.Errorf("cannot unlock %s: %w", path, err)
		}
	}
}

func typeName(fstype string) string {
	if fstype == "" {
		return "unrecognised (assumed ext2/3/4)"
	}
	return fstype
}

func toolName(cmdline string) string {
	name, _, _ := strings.Cut(cmdline, " ")
	if name == "" {
		return "the checker"
	}
	return name
}
