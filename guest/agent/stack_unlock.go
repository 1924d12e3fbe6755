package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/pkg/control"
)

// unlockStack unlocks a layered drive: RAID and LVM are assembled first (LUKS on LVM), then every
// LUKS volume the passphrase opens is opened (one prompt for all members that share it), then
// what the mappings hold is assembled (LVM on LUKS). ok is false when the drive is one LUKS
// device and unlock's single-device rule applies.
func (a *Agent) unlockStack(ctx context.Context, req control.UnlockRequest, secret []byte) (any, bool, error) {
	if req.Device != "" {
		return nil, false, nil
	}
	devs, err := a.blockDevs(ctx)
	if err != nil {
		return nil, true, err
	}
	if !a.stackNeeded(devs, a.stk.want) && countLUKS(devs) < 2 {
		return nil, false, nil
	}
	if !req.Continue { // a Continue's first call assembled what is below the LUKS members
		if devs, err = a.assemble(ctx, a.stk.degraded); err != nil {
			return nil, true, err
		}
	}
	var luks []blockDev
	for _, b := range devs {
		if isLUKS(b.in) && a.stk.mappers[b.dev] == "" {
			luks = append(luks, b)
		}
	}
	if a.stk.want != "" {
		var named []blockDev
		for _, b := range luks {
			if b.matches(a.stk.want) {
				named = append(named, b)
			}
		}
		if len(named) > 0 {
			luks = named
		}
		// Else the named volume may be inside one of them (vg/lv on LUKS): open them all.
	}
	if len(luks) == 0 {
		return nil, true, control.Errorf(control.CodeNotEncrypted, "no volume on this drive is LUKS-encrypted; mount it without unlocking")
	}
	if req.Continue && len(secret) == 0 {
		return a.skipLocked(ctx, luks)
	}
	if req.Continue {
		if luks = withoutSkipped(luks, req.Skip); len(luks) == 0 {
			return nil, true, control.Errorf(control.CodeInvalidArgument, "every LUKS volume still locked was skipped: continue without a passphrase to go on with what is open")
		}
	}
	start := a.tl.Now()
	p := a.startProgress("unlock", fmt.Sprintf("deriving the key for %d LUKS volume(s) (takes a few seconds each)", len(luks)))
	var firstErr error
	var opened []string
	for _, b := range luks {
		if err := a.prepareCrypto(b.dev); err != nil {
			firstErr = keepFirst(firstErr, err)
			continue
		}
		name := cryptsetup.MapperName
		if len(a.stk.mappers) > 0 {
			name = fmt.Sprintf("%s-%d", cryptsetup.MapperName, len(a.stk.mappers)+1)
		}
		o := cryptsetup.OpenOptions{ReadOnly: req.ReadOnly, AllowDiscards: req.AllowDiscards}
		if err := a.crypt.OpenNamed(ctx, b.dev, name, o, secret, true); err != nil {
			a.tl.Logf("warn", "unlock %s (%s): %v", displayName(b), b.dev, err)
			firstErr = keepFirst(firstErr, err)
			continue
		}
		mapper := "/dev/mapper/" + name
		a.stk.mappers[b.dev] = mapper
		a.stk.push("close the LUKS mapping "+name, func(ctx context.Context) error { return a.crypt.CloseNamed(ctx, name) })
		opened = append(opened, displayName(b))
		if len(a.stk.mappers) == 1 {
			a.mu.Lock()
			a.state, a.device, a.mapper, a.readOnly = control.StateUnlocked, b.dev, mapper, req.ReadOnly
			a.mu.Unlock()
		}
	}
	p.stop()
	if len(opened) == 0 {
		return nil, true, firstErr
	}
	if len(opened) < len(luks) {
		a.tl.Logf("warn", "%d LUKS volume(s) did not open with this passphrase and stay locked", len(luks)-len(opened))
		if rep, ok := a.stillLocked(req, luks, firstErr, start, opened); ok {
			return rep, true, nil
		}
	}
	a.stk.locked = nil
	a.tl.Step("unlock", start, "%d of %d LUKS volume(s) opened with one passphrase: %v%s%s", len(opened), len(luks), opened, roNote(req.ReadOnly), discardNote(req.AllowDiscards))
	if _, err := a.assemble(ctx, a.stk.degraded); err != nil {
		return nil, true, err
	}
	return control.UnlockReply{Mapper: cryptsetup.MapperPath}, true, nil
}

// keepFirst keeps the first error, but a wrong passphrase wins over "this one is unsupported":
// the host asks again only after a wrong passphrase.
func keepFirst(first, err error) error {
	if first == nil || (errors.Is(err, control.ErrWrongPassphrase) && !errors.Is(first, control.ErrWrongPassphrase)) {
		return err
	}
	return first
}

func countLUKS(devs []blockDev) int {
	n := 0
	for _, b := range devs {
		if isLUKS(b.in) {
			n++
		}
	}
	return n
}

// afterUnlock records the single mapping's close as the bottom of the stack and assembles what
// it holds (LVM or RAID on LUKS).
func (a *Agent) afterUnlock(ctx context.Context) error {
	a.stk.push("close the LUKS mapping "+cryptsetup.MapperName, func(ctx context.Context) error { return a.crypt.Close(ctx) })
	in, err := blkid.Probe(ctx, a.deps.Run, cryptsetup.MapperPath)
	if err != nil || (in.Type != "LVM2_member" && in.Type != "linux_raid_member") {
		return nil
	}
	_, err = a.assemble(ctx, a.stk.degraded)
	return err
}
