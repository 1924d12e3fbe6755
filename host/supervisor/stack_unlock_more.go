package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/pkg/control"
)

// unlockLocked asks for the passphrase of each LUKS member the first one did not open (members of
// one target may have been made with different passphrases), three tries each, naming the member;
// the guest assembles the stack once none is left. No passphrase (Return) leaves a member locked.
func (s *sup) unlockLocked(ctx context.Context, req control.UnlockRequest, locked []string) error {
	req.Continue, req.Partial = true, true
	for len(locked) > 0 {
		member := s.guestDevName(locked[0])
		for attempt := 1; ; attempt++ {
			prompt := fmt.Sprintf("Passphrase for %s (the first passphrase did not open it): ", member)
			if attempt > 1 {
				prompt = fmt.Sprintf("Passphrase for %s (attempt %d of %d): ", member, attempt, MaxAttempts)
			}
			secret, err := s.ui.Passphrase(ctx, prompt, attempt, MaxAttempts)
			switch {
			case errors.Is(err, passphrase.ErrNoInput) && attempt > 1:
				return &PassphraseError{Target: member, Attempts: attempt - 1}
			case errors.Is(err, passphrase.ErrNoInput) || (err == nil && len(secret) == 0):
				// None for it (Return, or end of input): leave it locked and go on with what is
				// open; a group or array that needs it then says what is missing.
				s.progress("%s stays locked", member)
				secret = nil
			case err != nil:
				return err
			}
			t := s.log.Start("unlock")
			uctx, cancel := context.WithTimeout(ctx, unlockTimeout)
			r, err := s.vm.Control().Unlock(uctx, req, secret)
			cancel()
			passphrase.Wipe(secret)
			if err == nil {
				t.Done(nil, "%s, attempt %d", member, attempt)
				locked = r.Locked
				if secret == nil {
					locked = nil
				}
				break
			}
			t.Done(err, "%s, attempt %d", member, attempt)
			switch {
			case errors.Is(err, control.ErrWrongPassphrase) && attempt < MaxAttempts:
				s.progress("wrong passphrase for %s (attempt %d of %d)", member, attempt, MaxAttempts)
			case errors.Is(err, control.ErrWrongPassphrase):
				return &PassphraseError{Target: member, Attempts: attempt}
			default:
				return fmt.Errorf("cannot unlock %s: %w", member, err)
			}
		}
	}
	return nil
}

// guestDevName is the user's name for a guest device: the disks are the target's devices in
// order (/dev/vda is the first), and a trailing number is a partition.
func (s *sup) guestDevName(dev string) string {
	rest, ok := strings.CutPrefix(dev, "/dev/vd")
	if !ok || rest == "" || rest[0] < 'a' || rest[0] > 'z' {
		return dev
	}
	i := int(rest[0] - 'a')
	name := ""
	switch {
	case i == 0:
		name = s.dev.Path
	case s.stack != nil && i-1 < len(s.stack.members):
		name = s.stack.members[i-1].Path
	default:
		return dev
	}
	if part := rest[1:]; part != "" {
		return fmt.Sprintf("partition %s of %s", part, name)
	}
	return name
}
