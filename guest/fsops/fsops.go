// Package fsops mounts, checks and creates filesystems in the guest: mount option parsing,
// kernel mount errors mapped to typed control errors, e2fsck -n and mkfs.ext4.
package fsops

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// Mountpoint is where the agent mounts the filesystem it serves.
const Mountpoint = "/mnt/data"

// Options are mount options split for mount(2).
type Options struct {
	Flags    uintptr
	Data     string // comma-joined filesystem options
	ReadOnly bool
	Notice   string // why the mount ended up read-only when nobody asked, for the user
}

// HasRO reports whether opts ask for a read-only mount.
func HasRO(opts []string) bool {
	ro := false
	for _, o := range opts {
		for _, w := range strings.Split(o, ",") {
			switch strings.TrimSpace(w) {
			case "ro":
				ro = true
			case "rw":
				ro = false
			}
		}
	}
	return ro
}

// forbidden options would let a filesystem error stop the VM without a clean shutdown.
var forbidden = map[string]string{
	"errors=panic": "a filesystem error would crash the VM without unmounting",
}

// CheckArgs builds a read-only forced e2fsck: -n answers no to every question, so nothing is written.
func CheckArgs(dev string) []string { return []string{"-n", "-f", dev} }

// Check runs e2fsck -n on dev. Exit 0 is clean; 4 means errors were found and left alone; 8 means
// e2fsck itself failed (the output says why).
func Check(ctx context.Context, run command.Runner, dev string) (control.CheckReply, error) {
	r, err := run.Run(ctx, command.Cmd{Name: "e2fsck", Args: CheckArgs(dev)})
	if err != nil {
		return control.CheckReply{}, control.Errorf(control.CodeInternal, "cannot run e2fsck: %v", err)
	}
	out := strings.TrimSpace(r.Stdout + "\n" + r.Stderr)
	return control.CheckReply{Clean: r.ExitCode == 0, ExitCode: r.ExitCode, Output: out}, nil
}

// MkfsArgs builds mkfs.ext4 with the inode tables and journal written now, not lazily in the
// background of a VM that will soon stop.
func MkfsArgs(dev, label string) ([]string, error) {
	if len(label) > 16 || strings.ContainsAny(label, "\x00\n/") {
		return nil, control.Errorf(control.CodeInvalidArgument, "ext4 label %q is too long or has bad characters (at most 16 bytes)", label)
	}
	args := []string{"-F", "-m0", "-E", "lazy_itable_init=0,lazy_journal_init=0"}
	if label != "" {
		args = append(args, "-L", label)
	}
	return append(args, dev), nil
}

// Mkfs creates an ext4 filesystem on dev.
func Mkfs(ctx context.Context, run command.Runner, dev, label string) error {
	args, err := MkfsArgs(dev, label)
	if err != nil {
		return err
	}
	r, err := run.Run(ctx, command.Cmd{Name: "mkfs.ext4", Args: args})
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run mkfs.ext4: %v", err)
	}
	if r.ExitCode != 0 {
		low := strings.ToLower(r.Stderr)
		code := control.CodeInternal
		if strings.Contains(low, "input/output error") {
			code = control.CodeIOError
		} else if strings.Contains(low, "in use") || strings.Contains(low, "busy") {
			code = control.CodeDeviceBusy
		}
		ce := control.Errorf(code, "cannot create ext4 on %s: mkfs.ext4 exited with %d", dev, r.ExitCode)
		ce.Detail = strings.TrimSpace(r.Stderr)
		return ce
	}
	return nil
}

// RootOwner returns the owner of path (the filesystem root once mounted).
func RootOwner(path string) (uid, gid uint32, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid, s.Gid, nil
	}
	return 0, 0, fmt.Errorf("cannot read the owner of %s", path)
}
