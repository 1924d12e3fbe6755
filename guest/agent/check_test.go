package agent

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/pkg/control"
)

// slowE2fsck answers e2fsck like the real one with -C 0, slowly; everything else goes to inner.
type slowE2fsck struct {
	inner command.Runner
	exit  int
	mu    sync.Mutex
	args  [][]string
}

func (s *slowE2fsck) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	if c.Name != "e2fsck" {
		return s.inner.Run(ctx, c)
	}
	s.mu.Lock()
	s.args = append(s.args, c.Args)
	s.mu.Unlock()
	out := "e2fsck 1.47.0 (5-Feb-2023)\nPass 1: Checking inodes, blocks, and sizes\n"
	for _, l := range strings.Split(out, "\n") {
		if c.Output != nil {
			c.Output(l)
		}
	}
	for _, pct := range []string{"12.5", "40.0"} {
		time.Sleep(60 * time.Millisecond)
		if c.Output != nil {
			c.Output("\x01/dev/vdb: |=====     | " + pct + "%")
		}
	}
	time.Sleep(60 * time.Millisecond)
	return command.Result{ExitCode: s.exit, Stdout: out + "\x01bar 40.0%\r\x02Root inode is not a directory.  Clear? no\n"}, nil
}

// TestCheckReportsProgressAndVerdict: check runs e2fsck -n (or -y with repair) with -C 0 and
// turns its output into progress events at least every progressEvery, then a verdict.
func TestCheckReportsProgressAndVerdict(t *testing.T) {
	old := progressEvery
	progressEvery = 25 * time.Millisecond
	defer func() { progressEvery = old }()
	a, f := newTestAgent(t)
	run := &slowE2fsck{inner: f, exit: 4}
	a.deps.Run = run
	var mu sync.Mutex
	var lines []string
	a.tl.AddSink(func(ev control.Event) {
		if ev.Kind == control.EventProgress && ev.Step == "check" {
			mu.Lock()
			lines = append(lines, ev.Message)
			mu.Unlock()
		}
	})
	c := client(t, a)
	rep, err := c.Check(context.Background(), control.CheckRequest{Device: "/dev/vdb"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clean || rep.Repaired || rep.ExitCode != 4 || !strings.Contains(rep.Output, "Root inode is not a directory") || strings.Contains(rep.Output, "bar 40.0%") {
		t.Fatalf("reply %+v", rep)
	}
	if got := strings.Join(run.args[0], " "); got != "-n -f -C 0 /dev/vdb" {
		t.Fatalf("e2fsck %s", got)
	}
	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	if len(lines) < 4 || !strings.Contains(all, "% done, pass 1 of 5 (checking inodes, blocks, and sizes)") || !strings.Contains(all, "elapsed") {
		t.Fatalf("progress lines:\n%s", all)
	}

	// A check quicker than progressEvery still shows how far the checker got, once.
	progressEvery = time.Hour
	mu.Lock()
	lines = nil
	mu.Unlock()
	if _, err := c.Check(context.Background(), control.CheckRequest{Device: "/dev/vdb"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	quick := lines
	mu.Unlock()
	if len(quick) != 2 || !strings.HasPrefix(quick[0], "checking ext4 (read-only): e2fsck") ||
		!strings.Contains(quick[1], "40.0% done, pass 1 of 5") || !strings.Contains(quick[1], "elapsed") {
		t.Fatalf("a quick check's progress lines:\n%s", strings.Join(quick, "\n"))
	}
	progressEvery = 25 * time.Millisecond

	run.exit = 1
	rep, err = c.Check(context.Background(), control.CheckRequest{Device: "/dev/vdb", Repair: true})
	if err != nil || !rep.Repaired || rep.Clean {
		t.Fatalf("repair: %+v, %v", rep, err)
	}
	if got := strings.Join(run.args[len(run.args)-1], " "); got != "-y -f -C 0 /dev/vdb" {
		t.Fatalf("repair ran e2fsck %s", got)
	}
	run.exit = 12 // problems found, and the read-only pass aborted on them
	if rep, err := c.Check(context.Background(), control.CheckRequest{Device: "/dev/vdb"}); err != nil || rep.Clean {
		t.Fatalf("exit 12: %+v %v", rep, err)
	}
	run.exit = 8
	if _, err := c.Check(context.Background(), control.CheckRequest{Device: "/dev/vdb"}); err == nil {
		t.Fatal("e2fsck exit 8 (operational error) passed as a verdict")
	}
}

func TestParseMkfsAndRepairTools(t *testing.T) {
	p := &progress{}
	for _, l := range []string{"Allocating group tables:  0/25", "done", "Writing inode tables:  0/25", "7/25"} {
		parseMkfs(p, l)
	}
	if p.state != "writing inode tables 7/25" {
		t.Fatalf("mkfs state %q", p.state)
	}
	parseRepairTool(p, "Phase 3 - for each AG...")
	if p.state != "phase 3 of 7 (for each AG...)" {
		t.Fatalf("xfs state %q", p.state)
	}
	parseRepairTool(p, "[2/7] checking extents")
	if p.state != "step 2 of 7 (checking extents)" {
		t.Fatalf("btrfs state %q", p.state)
	}
}

func superblock(state uint16, errCount uint32, csum bool) []byte {
	b := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint16(b[0x38:], 0xEF53)
	le.PutUint16(b[0x3A:], state)
	le.PutUint32(b[0x194:], errCount)
	copy(b[0x1A8:], "ext4_lookup")
	if csum {
		le.PutUint32(b[0x64:], 0x400)
		le.PutUint32(b[0x3FC:], ^crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[:0x3FC]))
	}
	return b
}

func TestParseExtSuper(t *testing.T) {
	s, err := parseExtSuper(superblock(1, 0, true))
	if err != nil || s.HasErrors || s.BadCsum {
		t.Fatalf("clean: %+v %v", s, err)
	}
	s, _ = parseExtSuper(superblock(3, 2, true))
	if !s.HasErrors || s.ErrorCount != 2 || s.FirstFunc != "ext4_lookup" || s.BadCsum {
		t.Fatalf("errors: %+v", s)
	}
	b := superblock(1, 0, true)
	b[0x80] ^= 1
	if s, _ = parseExtSuper(b); !s.BadCsum {
		t.Fatal("a flipped bit passed the checksum")
	}
	if _, err := parseExtSuper(make([]byte, 1024)); err != errNoExtMagic {
		t.Fatalf("zeroed: %v", err)
	}
}

// TestMountGate: a damaged superblock is refused with a pointer to `luksmount check`; a filesystem
// marked with errors is mounted read-only; ext4 always gets errors=remount-ro.
func TestMountGate(t *testing.T) {
	a, _ := newTestAgent(t)
	old := readExtSuper
	defer func() { readExtSuper = old }()
	ext4 := blkid.Info{Type: "ext4"}
	opts := fsops.Options{}

	readExtSuper = func(string) (extSuper, error) { return parseExtSuper(superblock(1, 0, true)) }
	o, err := a.mountGate("/dev/vdb", ext4, opts, nil)
	if err != nil || o.ReadOnly || o.Data != "errors=remount-ro" {
		t.Fatalf("clean: %+v %v", o, err)
	}
	readExtSuper = func(string) (extSuper, error) { return parseExtSuper(superblock(3, 1, true)) }
	o, err = a.mountGate("/dev/vdb", ext4, opts, nil)
	if err != nil || !o.ReadOnly || o.Data != "errors=remount-ro" {
		t.Fatalf("with errors: %+v %v", o, err)
	}
	bad := superblock(1, 0, true)
	bad[0x70] ^= 0xff
	readExtSuper = func(string) (extSuper, error) { return parseExtSuper(bad) }
	_, err = a.mountGate("/dev/vdb", ext4, opts, nil)
	if !errorsIs(err, control.ErrNeedsRepair) || !strings.Contains(err.Error(), "luksmount check --repair") {
		t.Fatalf("bad checksum: %v", err)
	}
	if o, _ := a.mountGate("/dev/vdb", blkid.Info{Type: "vfat"}, opts, nil); o.Data != "" {
		t.Fatalf("vfat got %q", o.Data)
	}
	wrapped := mountFailed(ext4, control.Errorf(control.CodeNeedsRepair, "cannot mount /dev/vdb (ext4): structure needs cleaning"))
	if !strings.Contains(wrapped.Error(), "damaged") || !strings.Contains(wrapped.Error(), "luksmount check --repair") {
		t.Fatalf("mount failure: %v", wrapped)
	}
}

func errorsIs(err error, target *control.Error) bool {
	ce, ok := err.(*control.Error)
	return ok && ce.Code == target.Code
}

// TestMountGoesThroughTheGate: Mount itself applies the gate (TestMountGate tests the gate alone):
// a filesystem marked with errors reaches the kernel's mount read-only with errors=remount-ro,
// and a damaged superblock never reaches it.
func TestMountGoesThroughTheGate(t *testing.T) {
	old := readExtSuper
	defer func() { readExtSuper = old }()
	for _, tc := range []struct {
		name  string
		super []byte
	}{{"marked with errors", superblock(3, 1, true)}, {"bad checksum", func() []byte {
		b := superblock(1, 0, true)
		b[0x70] ^= 0xff
		return b
	}()}} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestAgent(t)
			readExtSuper = func(string) (extSuper, error) { return parseExtSuper(tc.super) }
			var got []fsops.Options
			mount := a.deps.Mount
			a.deps.Mount = func(dev, target, fstype string, o fsops.Options) error {
				got = append(got, o)
				return mount(dev, target, fstype, o)
			}
			_, err := client(t, a).Mount(context.Background(), control.MountRequest{Device: "/dev/vdb"})
			if tc.name == "bad checksum" {
				if !errorsIs(err, control.ErrNeedsRepair) || len(got) != 0 {
					t.Fatalf("a damaged superblock: %v, %d kernel mounts", err, len(got))
				}
				return
			}
			if err != nil || len(got) != 1 || !got[0].ReadOnly || !strings.Contains(got[0].Data, "errors=remount-ro") {
				t.Fatalf("mount: %v, options %+v", err, got)
			}
		})
	}
}

// Each filesystem's checker runs read-only without --repair; the exit codes mean what the
// tool's manual says; NTFS is never "repaired" by ntfsfix.
func TestCheckCommandsPerFilesystem(t *testing.T) {
	for _, c := range []struct {
		fs     string
		repair bool
		want   string
	}{
		{"ext4", false, "e2fsck -n -f -C 0 /dev/x"}, {"xfs", false, "xfs_repair -n /dev/x"},
		{"btrfs", false, "btrfs check --readonly --progress /dev/x"}, {"vfat", false, "fsck.fat -n /dev/x"},
		{"exfat", false, "fsck.exfat -n /dev/x"}, {"ntfs", false, "ntfsfix -n /dev/x"},
		{"vfat", true, "fsck.fat -a /dev/x"}, {"exfat", true, "fsck.exfat -y /dev/x"}, {"xfs", true, "xfs_repair /dev/x"},
	} {
		cmd, _, err := checkCommand(c.fs, "/dev/x", c.repair)
		if err != nil || cmd.Name+" "+strings.Join(cmd.Args, " ") != c.want {
			t.Errorf("%s repair=%v: %v %v, %v; want %s", c.fs, c.repair, cmd.Name, cmd.Args, err, c.want)
		}
	}
	if _, _, err := checkCommand("ntfs", "/dev/x", true); err == nil || !strings.Contains(err.Error(), "chkdsk") {
		t.Errorf("NTFS repair: %v; want a refusal that says to run chkdsk", err)
	}
	for _, c := range []struct {
		fs                     string
		repair                 bool
		code                   int
		clean, repaired, isErr bool
	}{
		{"vfat", false, 0, true, false, false}, {"vfat", false, 1, false, false, false}, {"vfat", true, 1, false, true, false},
		{"vfat", false, 2, false, false, true}, {"exfat", false, 4, false, false, false}, {"exfat", true, 1, false, true, false},
		{"exfat", false, 8, false, false, true}, {"ntfs", false, 1, false, false, false}, {"ntfs", false, 0, true, false, false},
	} {
		clean, repaired, err := checkVerdict(c.fs, c.repair, c.code)
		if clean != c.clean || repaired != c.repaired || (err != nil) != c.isErr {
			t.Errorf("%s repair=%v exit %d: clean %v repaired %v err %v", c.fs, c.repair, c.code, clean, repaired, err)
		}
	}
}
