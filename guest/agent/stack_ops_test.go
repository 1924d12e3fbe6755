package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// stackRunner adds fstrim, resize2fs and cryptsetup resize to fakeSys.
type stackRunner struct {
	*fakeSys
	cmds     []string
	trimOut  command.Result
	growFail bool
}

func (s *stackRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	line := c.Name + " " + strings.Join(c.Args, " ")
	switch {
	case c.Name == "fstrim":
		s.cmds = append(s.cmds, line)
		return s.trimOut, nil
	case c.Name == "resize2fs":
		s.cmds = append(s.cmds, line)
		if s.growFail {
			return command.Result{ExitCode: 1, Stderr: "resize2fs: Permission denied to resize filesystem\n"}, nil
		}
		return command.Result{}, nil
	case c.Name == "cryptsetup" && c.Args[0] == "resize":
		s.cmds = append(s.cmds, line)
		return command.Result{}, nil
	case c.Name == "cryptsetup" && c.Args[0] == "open":
		s.cmds = append(s.cmds, line)
	}
	return s.fakeSys.Run(ctx, c)
}

func newStackAgent(t *testing.T) (*Agent, *stackRunner, *control.Client) {
	a, f := newTestAgent(t)
	s := &stackRunner{fakeSys: f, trimOut: command.Result{Stdout: "/mnt: 60 MiB (62914560 bytes) trimmed\n"}}
	a.deps.Run, a.crypt.Run = s, s
	return a, s, client(t, a)
}

func TestTrimNeedsAMountAndReportsBytes(t *testing.T) {
	_, s, c := newStackAgent(t)
	ctx := context.Background()
	_, err := c.Trim(ctx)
	wantCode(t, err, control.CodeBadState, "trim before mount")
	if _, err := c.Unlock(ctx, control.UnlockRequest{AllowDiscards: true}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.cmds[0], "--allow-discards") {
		t.Fatalf("unlock with AllowDiscards ran %q", s.cmds[0])
	}
	if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Trim(ctx)
	if err != nil || r.TrimmedBytes != 62914560 {
		t.Fatalf("Trim = %+v, %v; want 62914560 bytes", r, err)
	}
	s.trimOut = command.Result{ExitCode: 1, Stderr: "fstrim: /mnt: the discard operation is not supported\n"}
	_, err = c.Trim(ctx)
	wantCode(t, err, control.CodeInvalidArgument, "trim without discard support")
	if !strings.Contains(err.Error(), "--discard") {
		t.Fatalf("error %q does not say to mount with --discard", err)
	}
}

func TestResizeWaitsForTheDiskThenGrowsMappingAndFS(t *testing.T) {
	a, s, c := newStackAgent(t)
	ctx := context.Background()
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.cmds[0], "--allow-discards") {
		t.Fatalf("discards allowed without asking: %q", s.cmds[0])
	}
	if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
		t.Fatal(err)
	}
	// The disk grows on the third look, as after QEMU's block_resize.
	looks := 0
	a.deps.Disks = func() ([]control.Disk, error) {
		looks++
		size := int64(1 << 30)
		if looks >= 3 {
			size = 2 << 30
		}
		return []control.Disk{{Device: "/dev/vda", Size: size}}, nil
	}
	r, err := c.Resize(ctx, control.ResizeRequest{DiskBytes: 2 << 30})
	if err != nil || r.DiskBytes != 2<<30 || r.FSType != "ext4" {
		t.Fatalf("Resize = %+v, %v", r, err)
	}
	want := []string{"cryptsetup resize luksmount", "resize2fs /dev/mapper/luksmount"}
	if got := s.cmds[len(s.cmds)-2:]; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("resize ran %q; want %q", got, want)
	}
	s.growFail = true
	_, err = c.Resize(ctx, control.ResizeRequest{DiskBytes: 2 << 30})
	wantCode(t, err, control.CodeInternal, "resize2fs failing")
	if !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("error %q lacks resize2fs's message", err)
	}
	old := diskWait
	diskWait = 0
	defer func() { diskWait = old }()
	_, err = c.Resize(ctx, control.ResizeRequest{DiskBytes: 4 << 30})
	wantCode(t, err, control.CodeInternal, "disk never grows")
}

func TestGrowCommand(t *testing.T) {
	for fs, want := range map[string]string{
		"ext4": "resize2fs /dev/mapper/luksmount", "xfs": "xfs_growfs /mnt", "btrfs": "btrfs filesystem resize max /mnt",
	} {
		n, a, err := growCommand(fs, "/dev/mapper/luksmount", "/mnt")
		if err != nil || n+" "+strings.Join(a, " ") != want {
			t.Errorf("growCommand(%s) = %s %v, %v; want %s", fs, n, a, err, want)
		}
	}
	if _, _, err := growCommand("vfat", "/dev/vda", "/mnt"); err == nil {
		t.Error("growCommand(vfat) accepted")
	}
}
