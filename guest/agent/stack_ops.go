package agent

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// Trim and resize work on what mount left open: the mounted filesystem, its mapping and disk.

// mountedStack is the part of the agent's state trim and resize need.
type mountedStack struct {
	disk, mapper, mountpoint, fstype string
	readOnly                         bool
}

func (a *Agent) mountedStack(what string) (mountedStack, error) {
	a.mu.Lock()
	m := mountedStack{a.device, a.mapper, a.mountpoint, a.fstype, a.readOnly}
	st := a.state
	a.mu.Unlock()
	if st != control.StateMounted && st != control.StateServing {
		return m, a.badState("cannot %s: no filesystem is mounted", what)
	}
	if m.readOnly {
		return m, control.Errorf(control.CodeInvalidArgument, "cannot %s: the drive is mounted read-only; mount it read-write first", what)
	}
	return m, nil
}

// fstrimBytes reads "/mnt: 60 MiB (62914560 bytes) trimmed" (util-linux fstrim -v).
var fstrimBytes = regexp.MustCompile(`\((\d+) bytes\) trimmed`)

func (a *Agent) trim(ctx context.Context, r *control.Request) (any, error) {
	var req control.TrimRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	m, err := a.mountedStack("trim")
	if err != nil {
		return nil, err
	}
	start := a.tl.Now()
	a.deps.Sync() // blocks freed by recent deletes are discardable once their transaction commits
	res, err := a.deps.Run.Run(ctx, command.Cmd{Name: "fstrim", Args: []string{"-v", m.mountpoint}})
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "cannot run fstrim: %v", err)
	}
	if res.ExitCode != 0 {
		out := strings.TrimSpace(res.Stderr + res.Stdout)
		if strings.Contains(strings.ToLower(out), "not supported") {
			return nil, control.Errorf(control.CodeInvalidArgument, "cannot trim: the drive or %s does not pass discards (%s); mount with --discard", m.fstype, lastLine(out))
		}
		return nil, control.Errorf(control.CodeIOError, "cannot trim %s: fstrim exited with %d: %s", m.fstype, res.ExitCode, lastLine(out))
	}
	var n int64
	if mm := fstrimBytes.FindStringSubmatch(res.Stdout); mm != nil {
		n, _ = strconv.ParseInt(mm[1], 10, 64)
	}
	a.deps.Sync()
	a.tl.Step("trim", start, "%s: %d MiB of free space discarded", m.fstype, n>>20)
	return control.TrimReply{TrimmedBytes: n}, nil
}

// diskWait bounds waiting for the guest kernel to see a disk grown by the host.
var diskWait = 20 * time.Second

func (a *Agent) resize(ctx context.Context, r *control.Request) (any, error) {
	var req control.ResizeRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	m, err := a.mountedStack("resize")
	if err != nil {
		return nil, err
	}
	if a.stk.layered() || len(a.stk.lvs) > 0 || len(a.stk.mdActive) > 0 || strings.HasPrefix(m.disk, "/dev/md") || isPartitionOf(m.disk) {
		return nil, control.Errorf(control.CodeInvalidArgument, "cannot resize: the filesystem sits in a partition, LVM or RAID, not on the whole image; grow that layer on Linux (parted, lvextend, mdadm --grow); nothing was changed")
	}
	if err := a.detachedResize(); err != nil {
		return nil, err
	}
	start := a.tl.Now()
	size, err := a.waitDiskSize(m.disk, req.DiskBytes)
	if err != nil {
		return nil, err
	}
	dev := m.disk
	if m.mapper != "" {
		if err := a.crypt.Resize(ctx); err != nil {
			return nil, err
		}
		dev = m.mapper
	}
	name, args, err := growCommand(m.fstype, dev, m.mountpoint)
	if err != nil {
		return nil, err
	}
	res, err := a.deps.Run.Run(ctx, command.Cmd{Name: name, Args: args})
	tool := name + " " + strings.Join(args, " ")
	if err != nil {
		return nil, control.Errorf(control.CodeUnsupportedFS, "cannot grow %s: this guest image has no %s (%v); nothing was changed", m.fstype, name, err)
	}
	if res.ExitCode != 0 {
		return nil, control.Errorf(control.CodeInternal, "cannot grow %s: %s exited with %d: %s", m.fstype, name, res.ExitCode, lastLine(res.Stderr+"\n"+res.Stdout))
	}
	fsBytes, _ := statfsTotal(m.mountpoint)
	a.tl.Step("resize", start, "%s grown to %d MiB on a %d MiB disk (%s)", m.fstype, fsBytes>>20, size>>20, tool)
	return control.ResizeReply{DiskBytes: size, FSBytes: fsBytes, FSType: m.fstype, Tool: tool}, nil
}

// waitDiskSize waits until the guest sees disk at want bytes (virtio-blk's config-change
// interrupt updates the capacity a moment after QEMU's block_resize).
func (a *Agent) waitDiskSize(disk string, want int64) (int64, error) {
	deadline := time.Now().Add(diskWait)
	for {
		ds, err := a.disks()
		if err != nil {
			return 0, err
		}
		var have int64 = -1
		for _, d := range ds {
			if d.Device == disk {
				have = d.Size
			}
		}
		switch {
		case have < 0:
			return 0, control.Errorf(control.CodeNotFound, "cannot resize: the disk %s is gone", disk)
		case want <= 0 || have >= want:
			return have, nil
		case time.Now().After(deadline):
			return 0, control.Errorf(control.CodeInternal, "cannot resize: the guest still sees %d MiB after %s, not %d MiB; nothing was grown", have>>20, diskWait, want>>20)
		}
		a.deps.Sleep(100 * time.Millisecond)
	}
}

// growCommand is the online grow tool for fstype (each grows to fill the device).
func growCommand(fstype, dev, mountpoint string) (string, []string, error) {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return "resize2fs", []string{dev}, nil
	case "xfs":
		return "xfs_growfs", []string{mountpoint}, nil
	case "btrfs":
		return "btrfs", []string{"filesystem", "resize", "max", mountpoint}, nil
	}
	return "", nil, control.Errorf(control.CodeUnsupportedFS, "cannot grow %s: luksmount grows ext2/3/4, xfs and btrfs; nothing was changed", fstype)
}

// lastLine is a tool's last non-empty output line, for one-line errors.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "no message"
}

func discardNote(on bool) string {
	if on {
		return " (discards allowed)"
	}
	return ""
}

// isPartitionOf says whether dev is a partition (vda2) rather than a whole virtio disk.
func isPartitionOf(dev string) bool {
	n := strings.TrimPrefix(dev, "/dev/vd")
	return n != dev && len(n) > 1
}
