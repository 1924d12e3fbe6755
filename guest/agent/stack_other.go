package agent

import (
	"context"
	"fmt"

	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/pkg/control"
)

// unlockOther opens a BitLocker (found by its signature) or VeraCrypt/TrueCrypt volume (which has
// none: the whole first disk, or the partition named with --volume).
func (a *Agent) unlockOther(ctx context.Context, req control.UnlockRequest, secret []byte) (any, error) {
	devs, err := a.blockDevs(ctx)
	if err != nil {
		return nil, err
	}
	var dev string
	for _, b := range devs {
		switch {
		case dev != "":
		case req.Device != "" && b.dev == req.Device, a.stk.want != "" && b.matches(a.stk.want):
			dev = b.dev
		case req.Device == "" && a.stk.want == "" && req.Type == "bitlk" && b.in.Type == "BitLocker":
			dev = b.dev
		case req.Device == "" && a.stk.want == "" && req.Type == "tcrypt" && !b.part:
			dev = b.dev
		}
	}
	if dev == "" && req.Type == "bitlk" && req.Device == "" && a.stk.want == "" && len(devs) > 0 {
		dev = devs[0].dev // the host saw the signature; blkid also checks fields it may not need
	}
	if dev == "" {
		if req.Type == "bitlk" {
			return nil, control.Errorf(control.CodeNotEncrypted, "no BitLocker volume on this drive (blkid finds no BitLocker signature); nothing was changed")
		}
		return nil, control.Errorf(control.CodeNotFound, "no volume %q on this drive to open as VeraCrypt", a.stk.want)
	}
	if req.Type == "tcrypt" && a.deps.Features != nil {
		// VeraCrypt tries every cipher and cascade: load them all, or a serpent volume would
		// look like a wrong password.
		for _, alg := range []string{"serpent", "twofish", "camellia", "xts", "sha512", "sha256", "wp512"} {
			if _, err := a.deps.Features(alg); err != nil {
				a.tl.Logf("debug", "tcrypt: %s: %v", alg, err)
			}
		}
	}
	start := a.tl.Now()
	p := a.startProgress("unlock", fmt.Sprintf("deriving the key for %s (%s; takes a while)", dev, req.Type))
	err = a.crypt.OpenOther(ctx, dev, req.Crypt, cryptsetup.OpenOptions{ReadOnly: req.ReadOnly, AllowDiscards: req.AllowDiscards}, secret)
	p.stop()
	if err != nil {
		a.tl.Logf("warn", "unlock %s failed: %v", dev, err)
		return nil, err
	}
	a.mu.Lock()
	a.state, a.device, a.mapper, a.readOnly = control.StateUnlocked, dev, cryptsetup.MapperPath, req.ReadOnly
	a.mu.Unlock()
	a.tl.Step("unlock", start, "%s (%s) opened as %s%s", dev, req.Type, cryptsetup.MapperPath, roNote(req.ReadOnly))
	if err := a.afterUnlock(ctx); err != nil {
		return nil, err
	}
	return control.UnlockReply{Mapper: cryptsetup.MapperPath}, nil
}
