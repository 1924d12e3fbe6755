package agent

import (
	"context"
	"errors"
	"slices"

	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/pkg/control"
)

// stillLocked answers a Partial unlock that opened some LUKS members but not all: the others are
// named so the host asks for their own passphrase (then unlocks again with Continue), and nothing
// is assembled until they are open, or an LVM group or array would look incomplete. Only a wrong
// passphrase is worth asking again for; ok is false otherwise and unlock goes on as before.
func (a *Agent) stillLocked(req control.UnlockRequest, luks []blockDev, firstErr error, start float64, opened []string) (control.UnlockReply, bool) {
	if !req.Partial || !errors.Is(firstErr, control.ErrWrongPassphrase) {
		return control.UnlockReply{}, false
	}
	var locked []string
	for _, b := range luks {
		if a.stk.mappers[b.dev] == "" {
			locked = append(locked, b.dev)
		}
	}
	a.stk.locked = locked
	a.tl.Step("unlock", start, "%d LUKS volume(s) opened with this passphrase: %v; %v need another", len(opened), opened, locked)
	return control.UnlockReply{Mapper: cryptsetup.MapperPath, Locked: locked}, true
}

// skipLocked is a Continue without a secret: the user has no passphrase for the members still
// locked (another LUKS partition they do not need). What is open is assembled as it is; a group
// or array that needed those members then says what is missing.
func (a *Agent) skipLocked(ctx context.Context, luks []blockDev) (any, bool, error) {
	var left []string
	for _, b := range luks {
		left = append(left, b.dev)
	}
	a.tl.Logf("info", "%d LUKS volume(s) left locked: no passphrase given for %v", len(left), left)
	a.stk.locked = nil
	if _, err := a.assemble(ctx, a.stk.degraded); err != nil {
		return nil, true, err
	}
	return control.UnlockReply{Mapper: cryptsetup.MapperPath}, true, nil
}

// withoutSkipped drops the members the user left locked at their own prompt (Return): another
// member's passphrase is not tried on them (each try costs a key derivation).
func withoutSkipped(luks []blockDev, skip []string) []blockDev {
	var out []blockDev
	for _, b := range luks {
		if !slices.Contains(skip, b.dev) {
			out = append(out, b)
		}
	}
	return out
}
