package agent

import (
	"context"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/pkg/control"
)

// source is what mount and check work on, and what it holds.
type source struct {
	dev    string
	in     blkid.Info
	mapped bool   // dev is the open LUKS mapping
	roWhy  string // set when dev may only be mounted read-only (a degraded RAID), saying why
}

// resolveSource is the one "which device" rule for mount and check: the open mapping when the
// request names no disk or the unlocked one, else the named disk (or the first disk), probed.
// A disk that is still LUKS-encrypted is refused: "unlock it, then <then>".
func (a *Agent) resolveSource(ctx context.Context, reqDev, then string) (source, error) {
	if src, ok, err := a.resolveVolume(ctx, reqDev, "", false); ok || err != nil {
		return src, err // a layered drive: partitions, LVM, RAID (stack_volumes.go)
	}
	a.mu.Lock()
	mapper, unlocked := a.mapper, a.device
	a.mu.Unlock()
	if mapper != "" && (reqDev == "" || reqDev == mapper || reqDev == unlocked) {
		in, err := blkid.Probe(ctx, a.deps.Run, mapper)
		if err != nil {
			return source{}, control.Errorf(control.CodeIOError, "cannot probe %s: %v", mapper, err)
		}
		return source{dev: mapper, in: in, mapped: true}, nil
	}
	dev, in, err := a.pickDevice(ctx, reqDev, nil, control.CodeNotFound, "")
	if err != nil {
		return source{}, err
	}
	if isLUKS(in) {
		return source{}, control.Errorf(control.CodeBadState, "%s is LUKS-encrypted: unlock it, then %s", dev, then)
	}
	return source{dev: dev, in: in}, nil
}
