package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/pkg/control"
)

// fsRunner makes /dev/vdb hold fstype and answers ntfs-3g with exit codes by mode.
type fsRunner struct {
	*fakeSys
	fstype     string
	rwExit     int
	ntfsCalls  []string
	ntfsExitRO int
}

func (r *fsRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	switch {
	case c.Name == "blkid" && c.Args[len(c.Args)-1] == "/dev/vdb":
		return command.Result{Stdout: "TYPE=" + r.fstype + "\nUUID=u\n"}, nil
	case c.Name == "ntfs-3g":
		opts := c.Args[1]
		r.ntfsCalls = append(r.ntfsCalls, opts)
		if strings.Contains(","+opts+",", ",ro,") {
			return command.Result{ExitCode: r.ntfsExitRO}, nil
		}
		return command.Result{ExitCode: r.rwExit, Stderr: "Windows is hibernated, refused to mount.\n"}, nil
	}
	return r.fakeSys.Run(ctx, c)
}

func TestNTFSHibernatedMountsReadOnlyAndSaysWhatToDo(t *testing.T) {
	a, f := newTestAgent(t)
	r := &fsRunner{fakeSys: f, fstype: "ntfs", rwExit: ntfsHibernated}
	a.deps.Run = r
	var asked []string
	a.deps.Features = func(n ...string) (int, error) { asked = append(asked, n...); return 1, nil }
	m, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.ReadOnly || m.FSType != "ntfs" {
		t.Fatalf("mount reply %+v; want read-only ntfs", m)
	}
	if strings.Join(asked, ",") != "fs-ntfs" {
		t.Fatalf("features asked %v; want fs-ntfs", asked)
	}
	if len(r.ntfsCalls) != 2 || !strings.Contains(r.ntfsCalls[0], "norecover") || strings.Contains(r.ntfsCalls[0], "remove_hiberfile") {
		t.Fatalf("ntfs-3g ran with %q; want norecover, rw then ro, never remove_hiberfile", r.ntfsCalls)
	}
	found := false
	for _, ev := range a.tl.Events() {
		found = found || strings.Contains(ev.Message, "Shift+Shut down") && strings.Contains(ev.Message, "read-only")
	}
	if !found {
		t.Fatal("no message saying the volume is read-only and what to do in Windows")
	}
	for _, l := range f.log {
		if strings.Contains(l, "ntfsfix") {
			t.Fatal("ntfsfix ran")
		}
	}
}

func TestNTFSCorruptIsNeedsRepair(t *testing.T) {
	a, f := newTestAgent(t)
	a.deps.Run = &fsRunner{fakeSys: f, fstype: "ntfs", rwExit: ntfsCorrupt}
	_, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"})
	wantCode(t, err, control.CodeNeedsRepair, "corrupt NTFS")
	if !strings.Contains(err.Error(), "chkdsk") {
		t.Fatalf("error %v does not say to run chkdsk", err)
	}
}

func TestUnknownFilesystemIsRefusedBeforeMount(t *testing.T) {
	a, f := newTestAgent(t)
	a.deps.Run = &fsRunner{fakeSys: f, fstype: "hfsplus"}
	a.deps.Features = func(n ...string) (int, error) { return 0, fmt.Errorf("%s: %w", n[0], initsys.ErrNoFeature) }
	_, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"})
	wantCode(t, err, control.CodeUnsupportedFS, "hfsplus")
	if !strings.Contains(err.Error(), "hfsplus") || !strings.Contains(err.Error(), "exFAT") {
		t.Fatalf("error %v does not name the type and what luksmount mounts", err)
	}
	if f.mounted {
		t.Fatal("mounted anyway")
	}
}

func TestFATGetsMasksAndNTFSFixedAttrs(t *testing.T) {
	if d := strings.Join(fsDefaults("vfat"), ","); !strings.Contains(d, "fmask=0133") || !strings.Contains(d, "errors=remount-ro") {
		t.Fatalf("vfat defaults %q", d)
	}
	a, f := newTestAgent(t)
	a.deps.Run = &fsRunner{fakeSys: f, fstype: "ntfs"}
	c := client(t, a)
	if _, err := c.Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Serve(context.Background(), control.ServeRequest{Port: 1}); err != nil {
		t.Fatal(err)
	}
	if !f.nfsOpts.FixedAttrs {
		t.Fatal("NTFS served without FixedAttrs: ntfs-3g would ignore chmod and chown silently")
	}
}

// btrfsRunner: vda and vdb hold members of one btrfs (same UUID).
type btrfsRunner struct{ *fakeSys }

func (r *btrfsRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	if c.Name == "blkid" {
		switch c.Args[len(c.Args)-1] {
		case "/dev/vda", "/dev/vdb":
			return command.Result{Stdout: "TYPE=btrfs\nUUID=same\n"}, nil
		}
	}
	return r.fakeSys.Run(ctx, c)
}

func TestMultiDeviceBtrfs(t *testing.T) {
	old := readBtrfsSuper
	defer func() { readBtrfsSuper = old }()
	for _, tc := range []struct {
		devices uint64
		opts    []string
		want    string // mount data, or "" for an error
	}{
		{2, nil, "device=/dev/vda"},
		{3, nil, ""},
		{3, []string{"degraded", "ro"}, "degraded,device=/dev/vda"},
	} {
		readBtrfsSuper = func(string) (btrfsSuper, error) { return btrfsSuper{NumDevices: tc.devices}, nil }
		a, f := newTestAgent(t)
		a.deps.Run = &btrfsRunner{f}
		var data string
		a.deps.SplitOptions = fsops.SplitOptions
		a.deps.Mount = func(dev, target, fstype string, o fsops.Options) error { data = o.Data; return nil }
		_, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb", Options: tc.opts})
		if tc.want == "" {
			wantCode(t, err, control.CodeNotFound, "missing btrfs member")
			if !strings.Contains(err.Error(), "spans 3 drives but only 2 are attached") {
				t.Fatalf("error %v does not say how many drives are missing", err)
			}
			continue
		}
		if err != nil || data != tc.want {
			t.Fatalf("%d devices, opts %v: mount data %q, %v; want %q", tc.devices, tc.opts, data, err, tc.want)
		}
	}
	if _, err := parseBtrfsSuper(make([]byte, 0x90)); err == nil {
		t.Fatal("zeros parsed as a btrfs superblock")
	}
}

// ntfs-3g falls back to read-only by itself (exit 0) on a hibernated volume: the agent must
// notice from the mount's flags, say so and serve read-only.
func TestNTFSFallbackReadOnlyIsNoticed(t *testing.T) {
	a, f := newTestAgent(t)
	r := &fsRunner{fakeSys: f, fstype: "ntfs", rwExit: 0}
	a.deps.Run = r
	old := mountedReadOnly
	mountedReadOnly = func(string) bool { return true }
	t.Cleanup(func() { mountedReadOnly = old })
	m, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.ReadOnly || !strings.Contains(m.Notice, "hibernated") || !strings.Contains(m.Notice, "Shift+Shut down") {
		t.Fatalf("mount reply %+v; want read-only with a notice saying hibernated and what to do", m)
	}
	if len(r.ntfsCalls) != 1 {
		t.Fatalf("ntfs-3g ran %d times (%q); want once", len(r.ntfsCalls), r.ntfsCalls)
	}
}

// A volume Windows marked dirty (chkdsk pending) is mounted read-only from the start: ntfs-3g
// itself does not look at the flag.
func TestNTFSDirtyMountsReadOnly(t *testing.T) {
	a, f := newTestAgent(t)
	r := &fsRunner{fakeSys: f, fstype: "ntfs", rwExit: 0}
	a.deps.Run = r
	old := readNTFSVolume
	readNTFSVolume = func(string) (fsops.NTFSVolumeInfo, error) {
		return fsops.NTFSVolumeInfo{Flags: fsops.NTFSVolumeDirty}, nil
	}
	t.Cleanup(func() { readNTFSVolume = old })
	m, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.ReadOnly || !strings.Contains(m.Notice, "chkdsk") {
		t.Fatalf("mount reply %+v; want read-only with a notice saying to run chkdsk", m)
	}
	if len(r.ntfsCalls) != 1 || !strings.Contains(","+r.ntfsCalls[0]+",", ",ro,") {
		t.Fatalf("ntfs-3g ran with %q; want one read-only mount", r.ntfsCalls)
	}
}
