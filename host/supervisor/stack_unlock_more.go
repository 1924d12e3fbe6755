package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/pkg/control"
)

// unlockLocked asks for the passphrase of each LUKS member the first one did not open (members of
// one target may have been made with different passphrases), three tries each, naming the member;
// the guest assembles the stack once none is left. Return at a member's prompt leaves that member
// locked and goes on to the next; end of input leaves it and every member after it locked (no
// more answers will come). What is open is then assembled; a group or array that needs a member
// left locked says what is missing.
func (s *sup) unlockLocked(ctx context.Context, req control.UnlockRequest, locked []string) error {
	req.Continue, req.Partial = true, true
	req.Skip = nil
	for len(locked) > 0 {
		dev, member := locked[0], s.guestDevName(locked[0])
		next, err := s.unlockMember(ctx, req, dev, member)
		switch {
		case errors.Is(err, errSkipMember):
			s.progress("%s stays locked", member)
			req.Skip = append(req.Skip, dev)
			locked = locked[1:]
		case errors.Is(err, passphrase.ErrNoInput):
			for _, d := range locked {
				s.progress("%s stays locked (no more input)", s.guestDevName(d))
			}
			req.Skip = append(req.Skip, locked...)
			locked = nil
		case err != nil:
			return err
		default:
			if len(next) == 0 {
				return nil // the guest opened the last one and assembled the stack
			}
			locked = withoutSkipped(next, req.Skip)
		}
	}
	// The members left are skipped: the guest assembles what is open.
	t := s.log.Start("unlock")
	uctx, cancel := context.WithTimeout(ctx, unlockTimeout)
	_, err := s.vm.Control().Unlock(uctx, req, nil)
	cancel()
	t.Done(err, "left locked: %s", strings.Join(req.Skip, " "))
	if err != nil {
		return fmt.Errorf("cannot go on without %s: %w", strings.Join(s.guestDevNames(req.Skip), ", "), err)
	}
	return nil
}

// errSkipMember is an empty passphrase (Return) at a member's prompt.
var errSkipMember = errors.New("no passphrase for this member")

// unlockMember asks for one locked member's passphrase, up to three times, and has the guest
// try it (on every member still locked but the skipped ones: a passphrase may open several). It
// returns the members still locked, errSkipMember for Return, passphrase.ErrNoInput at the end
// of input on the first try, a PassphraseError after three wrong ones or at the end of input
// after a wrong one.
func (s *sup) unlockMember(ctx context.Context, req control.UnlockRequest, dev, member string) ([]string, error) {
	for attempt := 1; ; attempt++ {
		prompt := fmt.Sprintf("Passphrase for %s (the first passphrase did not open it; Return leaves it locked): ", member)
		if attempt > 1 {
			prompt = fmt.Sprintf("Passphrase for %s (attempt %d of %d): ", member, attempt, MaxAttempts)
		}
		secret, err := s.ui.Passphrase(ctx, prompt, attempt, MaxAttempts)
		switch {
		case errors.Is(err, passphrase.ErrNoInput) && attempt > 1:
			return nil, &PassphraseError{Target: member, Attempts: attempt - 1}
		case err != nil:
			return nil, err
		case len(secret) == 0:
			return nil, errSkipMember
		}
		t := s.log.Start("unlock")
		uctx, cancel := context.WithTimeout(ctx, unlockTimeout)
		r, err := s.vm.Control().Unlock(uctx, req, secret)
		cancel()
		passphrase.Wipe(secret)
		if err == nil {
			t.Done(nil, "%s, attempt %d", member, attempt)
			return r.Locked, nil
		}
		t.Done(err, "%s, attempt %d", member, attempt)
		switch {
		case errors.Is(err, control.ErrWrongPassphrase) && attempt < MaxAttempts:
			s.progress("wrong passphrase for %s (attempt %d of %d)", member, attempt, MaxAttempts)
		case errors.Is(err, control.ErrWrongPassphrase):
			return nil, &PassphraseError{Target: member, Attempts: attempt}
		default:
			return nil, fmt.Errorf("cannot unlock %s: %w", member, err)
		}
	}
}

// withoutSkipped drops what the user already left locked (the guest does too; this keeps the
// loop from asking twice whatever it answers).
func withoutSkipped(locked, skip []string) []string {
	var out []string
	for _, d := range locked {
		if !slices.Contains(skip, d) {
			out = append(out, d)
		}
	}
	return out
}

func (s *sup) guestDevNames(devs []string) []string {
	var out []string
	for _, d := range devs {
		out = append(out, s.guestDevName(d))
	}
	return out
}

// guestDevName is the user's name for a guest device (guestDisks' order): the target's device
// for a disk, "partition N of" it for a partition, the guest's name for anything else.
func (s *sup) guestDevName(dev string) string {
	i, part, ok := guestDiskIndex(dev)
	disks := guestDisks(s.dev, s.members())
	if !ok || i >= len(disks) {
		return dev
	}
	if part != "" {
		return fmt.Sprintf("partition %s of %s", part, disks[i].Path)
	}
	return disks[i].Path
}
