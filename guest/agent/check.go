package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// checkCommand is the tool that checks (or, with repair, repairs) a filesystem of type fstype,
// and the parser of its progress output. "" (blkid found nothing) is tried as ext2/3/4: e2fsck
// finds a backup superblock when the primary one is gone.
func checkCommand(fstype, dev string, repair bool) (command.Cmd, func(*progress, string), error) {
	pick := func(check, fix string) string {
		if repair {
			return fix
		}
		return check
	}
	switch {
	case isExt(fstype) || fstype == "":
		return command.Cmd{Name: "e2fsck", Args: []string{pick("-n", "-y"), "-f", "-C", "0", dev}}, parseE2fsck, nil
	case fstype == "xfs":
		args := []string{dev}
		if !repair {
			args = []string{"-n", dev}
		}
		return command.Cmd{Name: "xfs_repair", Args: args}, parseRepairTool, nil
	case fstype == "btrfs":
		return command.Cmd{Name: "btrfs", Args: []string{"check", pick("--readonly", "--repair"), "--progress", dev}}, parseRepairTool, nil
	case fstype == "vfat":
		// -n: no changes; -a: repair without questions (the host asked the user already).
		return command.Cmd{Name: "fsck.fat", Args: []string{pick("-n", "-a"), dev}}, parseRepairTool, nil
	case fstype == "exfat":
		return command.Cmd{Name: "fsck.exfat", Args: []string{pick("-n", "-y"), dev}}, parseRepairTool, nil
	case fstype == "ntfs":
		if repair {
			// ntfsfix does not repair: it resets the journal (losing what Windows had not
			// written) and asks Windows to run chkdsk, so it is never run for the user.
			return command.Cmd{}, nil, control.Errorf(control.CodeUnsupportedOp, "%s", ntfsNoRepair)
		}
		return command.Cmd{Name: "ntfsfix", Args: []string{"-n", dev}}, parseRepairTool, nil
	}
	return command.Cmd{}, nil, control.Errorf(control.CodeUnsupportedFS, "cannot check %s: luksmount checks %s", fstype, supportedFS)
}

// ntfsNoRepair is why NTFS is never repaired here, and what to do instead.
const ntfsNoRepair = "luksmount does not repair NTFS (ntfsfix only resets the journal, which can lose data, and leaves the repair to Windows); nothing was changed: repair it in Windows with `chkdsk /f X:`"

// checkVerdict reads the tool's exit code: clean, repaired, or problems left.
func checkVerdict(fstype string, repair bool, code int) (clean, repaired bool, err error) {
	if isExt(fstype) || fstype == "" || fstype == "exfat" {
		// e2fsck(8), and fsck.exfat with the same table: 0 clean, 1 errors corrected, 2
		// corrected (reboot), 4 left uncorrected, 8 operational error, 16 usage, 32
		// cancelled, 128 shared library error.
		switch {
		case code == 0:
			return true, false, nil
		case code&^3 == 0 && repair:
			return false, true, nil
		case code&4 != 0 && code < 16:
			// 4 (with 8: the read-only pass aborted, e.g. "Cannot proceed without a root
			// inode") means problems were found and left alone.
			return false, false, nil
		case code&8 != 0 || code >= 16:
			return false, false, control.Errorf(control.CodeInternal, "%s could not check the filesystem (exit %d); see the output in the log", map[bool]string{true: "fsck.exfat", false: "e2fsck"}[fstype == "exfat"], code)
		}
		return false, false, nil
	}
	if fstype == "vfat" && code > 1 {
		// fsck.fat(8): 0 nothing found, 1 errors found (and, with -a, fixed), 2 usage error
		// (the filesystem was not accessed).
		return false, false, control.Errorf(control.CodeInternal, "fsck.fat could not check the filesystem (exit %d); see the output in the log", code)
	}
	// xfs_repair -n, btrfs check, ntfsfix -n and fsck.fat exit non-zero when they found
	// problems.
	if code == 0 {
		return !repair, repair, nil
	}
	if fstype == "vfat" && repair {
		return false, true, nil
	}
	return false, false, nil
}

// beginUnmounted is what mount and check share: decode the request into req, take the operation
// lock and refuse (badState(why)) unless the drive is open and nothing is mounted. It returns
// whether the mapping is read-only and done, which releases the lock.
func (a *Agent) beginUnmounted(r *control.Request, req any, why string) (mappingRO bool, done func(), err error) {
	if err := r.Decode(req); err != nil {
		return false, nil, err
	}
	a.opMu.Lock()
	a.mu.Lock()
	st, mappingRO := a.state, a.readOnly
	a.mu.Unlock()
	if st != control.StateReady && st != control.StateUnlocked {
		a.opMu.Unlock()
		return false, nil, a.badState(why)
	}
	return mappingRO, a.opMu.Unlock, nil
}

// check runs the filesystem checker on the unmounted filesystem, read-only unless req.Repair,
// reporting progress at least every progressEvery.
func (a *Agent) check(ctx context.Context, r *control.Request) (any, error) {
	var req control.CheckRequest
	mappingRO, done, err := a.beginUnmounted(r, &req, "cannot check a mounted filesystem: stop the session, then check")
	if err != nil {
		return nil, err
	}
	defer done()
	src, err := a.resolveSource(ctx, req.Device, "check")
	if err != nil {
		return nil, err
	}
	dev, in := src.dev, src.in
	mappingRO = mappingRO && src.mapped
	if req.Repair && (mappingRO || a.diskReadOnly(dev)) {
		return nil, control.Errorf(control.CodeInvalidArgument, "cannot repair %s: it is open read-only", dev)
	}
	cmd, parse, err := checkCommand(in.Type, dev, req.Repair)
	if err != nil {
		return nil, err
	}
	what := "checking " + typeOrNothing(in.Type) + " (read-only)"
	if req.Repair {
		what = "repairing " + typeOrNothing(in.Type)
	}
	start := a.tl.Now()
	p := a.startProgress("check", fmt.Sprintf("%s: %s", what, cmd))
	res, err := p.runner(a.deps.Run, cmd.Name, parse).Run(ctx, cmd)
	p.finish()
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "cannot run %s: %v", cmd.Name, err)
	}
	clean, repaired, err := checkVerdict(in.Type, req.Repair, res.ExitCode)
	out := strings.TrimSpace(stripProgress(res.Stdout) + "\n" + res.Stderr)
	if err != nil {
		a.tl.Logf("warn", "%s: %v\n%s", cmd, err, out)
		return nil, err
	}
	verdict := "clean"
	switch {
	case repaired:
		verdict = fmt.Sprintf("problems repaired (exit %d)", res.ExitCode)
	case !clean:
		verdict = fmt.Sprintf("problems found (exit %d)", res.ExitCode)
	}
	a.tl.Step("check", start, "%s: %s", dev, verdict)
	rep := control.CheckReply{Clean: clean, ExitCode: res.ExitCode, Output: out, FSType: in.Type, Tool: cmd.String(), Repaired: repaired}
	if !clean && in.Type == "ntfs" {
		rep.NoRepair = ntfsNoRepair
	}
	return rep, nil
}

// stripProgress drops e2fsck's redrawn progress bar (between \x01 and \x02) from its output.
func stripProgress(s string) string {
	var b strings.Builder
	in := false
	for _, c := range s {
		switch {
		case c == '\x01':
			in = true
		case c == '\x02':
			in = false
		case !in && c != '\r':
			b.WriteRune(c)
		}
	}
	return b.String()
}
