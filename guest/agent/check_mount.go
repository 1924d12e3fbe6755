package agent

import (
	"fmt"
	"strings"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/pkg/control"
)

// checkHint is what every damaged-filesystem message ends with.
const checkHint = "check it with `luksmount check TARGET`, repair it with `luksmount check --repair TARGET`"

func isExt(t string) bool { return t == "ext2" || t == "ext3" || t == "ext4" }

// mountGate runs before a filesystem is mounted: a filesystem whose superblock is damaged is
// refused, one the kernel marked as having errors is mounted read-only (its data can still be
// copied off), and ext2/3/4 get errors=remount-ro, so an error found while mounted stops writes
// instead of letting them pile onto the damage (mke2fs's default is errors=continue).
func (a *Agent) mountGate(dev string, in blkid.Info, opts fsops.Options, reqOpts []string) (fsops.Options, error) {
	if !isExt(in.Type) {
		return opts, nil
	}
	if !strings.Contains(opts.Data, "errors=") {
		if opts.Data != "" {
			opts.Data += ","
		}
		opts.Data += "errors=remount-ro"
	}
	sb, err := readExtSuper(dev)
	if err != nil {
		return opts, nil // the kernel's mount will say what is wrong
	}
	if sb.BadCsum {
		return opts, control.Errorf(control.CodeNeedsRepair, "the %s superblock is damaged (its checksum does not match); nothing was mounted or changed: %s", in.Type, checkHint)
	}
	if sb.HasErrors && !opts.ReadOnly {
		where := ""
		if sb.FirstFunc != "" {
			where = ", first in " + sb.FirstFunc
		}
		msg := fmt.Sprintf("the %s filesystem is marked as having errors (%d recorded%s): mounting it read-only; %s",
			in.Type, sb.ErrorCount, where, checkHint)
		a.tl.Fault(faultFS, "warn", "%s", msg)
		ro, err := a.deps.SplitOptions(append(append([]string(nil), reqOpts...), "ro"))
		if err != nil {
			return opts, err
		}
		ro.Data, ro.Notice = opts.Data, msg
		return ro, nil
	}
	return opts, nil
}

// mountFailed turns a failed mount of a damaged filesystem into a needs-repair error that says
// what to run; other failures pass through.
func mountFailed(in blkid.Info, err error) error {
	if !isExt(in.Type) && in.Type != "xfs" && in.Type != "btrfs" {
		return err
	}
	var ce *control.Error
	if e, ok := err.(*control.Error); ok {
		ce = e
	}
	if ce == nil || ce.Code != control.CodeNeedsRepair {
		return err
	}
	return control.Errorf(control.CodeNeedsRepair, "the %s filesystem is damaged: %s; nothing was changed: %s", in.Type, ce.Message, checkHint)
}
