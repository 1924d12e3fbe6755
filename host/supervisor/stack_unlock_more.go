package supervisor

import (
	"context"
	"errors"
	"fmt"

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
