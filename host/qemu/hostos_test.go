package qemu

import (
	"slices"
	"strings"
	"testing"
)

// The darwin disk arguments under sudo, whole: QEMU opens the raw node itself as root with its
// byte-range locks off (our flock is the guard, finding 1), no fdset (F_SETFL fails on disk
// descriptors there), and drops to the invoking user before the guest runs (issue 13.5).
func TestDarwinSudoCommandLine(t *testing.T) {
	c := base(ArchARM64, AccelHVF, "darwin")
	c.CPUs = 2
	c.Disks = []Disk{{Path: "/dev/rdisk4s2", HostDevice: true, LogicalBlockSize: 512, PhysicalBlockSize: 4096, Serial: "luksmount"}}
	c.RunAs = &RunAs{UID: 501, GID: 20}
	args, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range [][]string{
		{"-M", "virt,accel=hvf", "-cpu", "host", "-smp", "2"},
		{"-blockdev", "driver=host_device,node-name=disk0-file,filename=/dev/rdisk4s2,read-only=off,cache.direct=off,cache.no-flush=off,locking=off"},
		{"-blockdev", "driver=raw,node-name=disk0,file=disk0-file,read-only=off"},
		{"-device", "virtio-blk-pci,drive=disk0,id=disk0-dev,write-cache=on,logical_block_size=512,physical_block_size=4096,serial=luksmount"},
	} {
		if !containsRun(args, run) {
			t.Errorf("missing %q in\n%q", run, args)
		}
	}
	// -run-with comes last and exactly once.
	if n := len(args); n < 2 || args[n-2] != "-run-with" || args[n-1] != "user=501:20" {
		t.Errorf("args end %q, want -run-with user=501:20", args[max(0, len(args)-2):])
	}
	if slices.Index(args, "-run-with") != len(args)-2 {
		t.Errorf("-run-with appears more than once: %q", args)
	}
	for _, a := range args {
		if strings.Contains(a, "fdset") || a == "-add-fd" || strings.Contains(a, "locking=on") || strings.Contains(a, "gic-version") {
			t.Errorf("unexpected argument %q", a)
		}
	}
}

func TestLockingOnlyOffOnDarwin(t *testing.T) {
	for _, tc := range []struct {
		host  string
		accel Accel
		dev   bool
		want  bool
	}{
		{"darwin", AccelHVF, true, true}, {"darwin", AccelHVF, false, true}, {"darwin", AccelTCG, false, true},
		{"linux", AccelKVM, true, false}, {"linux", AccelTCG, false, false},
	} {
		c := base(ArchARM64, tc.accel, tc.host)
		c.Disks[0].HostDevice = tc.dev
		args, err := c.Args()
		if err != nil {
			t.Fatal(err)
		}
		i := slices.Index(args, "-blockdev")
		if got := strings.HasSuffix(args[i+1], ",locking=off"); got != tc.want {
			t.Errorf("%s/%s device=%v: %q, want locking=off %v", tc.host, tc.accel, tc.dev, args[i+1], tc.want)
		}
	}
}

// Image files may still be handed over as descriptors on macOS (F_SETFL is a no-op on regular
// files there); devices may not.
func TestDiskFDWorks(t *testing.T) {
	if !DiskFDWorks("linux", true) || !DiskFDWorks("linux", false) || !DiskFDWorks("darwin", false) || DiskFDWorks("darwin", true) {
		t.Error("DiskFDWorks: want false only for darwin devices")
	}
	c := base(ArchARM64, AccelHVF, "darwin")
	c.Disks[0].FD = 3
	args, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	if !containsRun(args, []string{"-add-fd", "fd=3,set=1"}) {
		t.Errorf("image fd on darwin not passed: %q", args)
	}
}

// GICv2 addresses at most 8 vCPUs (finding 12).
func TestVirtGICAboveEightCPUs(t *testing.T) {
	for _, tc := range []struct {
		accel Accel
		host  string
		cpus  int
		want  string
	}{
		{AccelHVF, "darwin", 8, "virt,accel=hvf"},
		{AccelHVF, "darwin", 9, "virt,accel=hvf,gic-version=3"},
		{AccelTCG, "linux", 16, "virt,gic-version=3"},
		{AccelKVM, "linux", 12, "virt,gic-version=3"},
		{AccelTCG, "linux", 1, "virt"},
	} {
		c := base(ArchARM64, tc.accel, tc.host)
		c.CPUs = tc.cpus
		args, err := c.Args()
		if err != nil {
			t.Fatal(err)
		}
		if got := args[slices.Index(args, "-M")+1]; got != tc.want {
			t.Errorf("%s %d cpus: -M %q, want %q", tc.accel, tc.cpus, got, tc.want)
		}
	}
	// q35 has no GIC.
	c := base(ArchAMD64, AccelTCG, "linux")
	c.CPUs = 16
	args, _ := c.Args()
	if a := strings.Join(args, " "); strings.Contains(a, "gic-version") {
		t.Errorf("q35 got a GIC option: %s", a)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"QEMU emulator version 10.1.2\nCopyright (c) 2003-2025 Fabrice Bellard": {10, 1, 2},
		"QEMU emulator version 9.1.0 (Debian 1:9.1.0+ds-1)":                     {9, 1, 0},
		"QEMU emulator version 7.2":                                             {7, 2, 0},
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseVersion("bash: qemu: not found"); err == nil {
		t.Error("no error for garbage")
	}
	if !(Version{9, 0, 2}).Less(MinRunWithUserVersion) || (Version{9, 1, 0}).Less(MinRunWithUserVersion) || (Version{10, 0, 0}).Less(MinRunWithUserVersion) {
		t.Error("Version.Less is wrong around 9.1")
	}
}
