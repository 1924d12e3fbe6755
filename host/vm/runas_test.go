package vm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/qemu"
)

// How QEMU is started under sudo: on darwin it is exec'd as root without the disk descriptor and
// drops to SUDO_UID:SUDO_GID itself (-run-with user=); on Linux it is exec'd as the user with the
// disk as fd 3 (-add-fd). Without sudo nothing changes.
func TestQEMUUnderSudo(t *testing.T) {
	disk, err := os.CreateTemp(t.TempDir(), "disk")
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	user := &User{UID: 501, GID: 20}
	for _, tc := range []struct {
		name       string
		goos       string
		euid       int
		invoking   *User
		hostDevice bool
		wantFD     bool   // the disk is passed as fd 3 (/dev/fdset)
		wantExec   *User  // the uid QEMU is exec'd with (nil = the supervisor's, root)
		wantRunAs  string // -run-with value ("" = none)
	}{
		{name: "darwin sudo raw disk", goos: "darwin", euid: 0, invoking: user, hostDevice: true, wantRunAs: "user=501:20"},
		{name: "darwin sudo image", goos: "darwin", euid: 0, invoking: user, hostDevice: false, wantRunAs: "user=501:20"},
		{name: "darwin no sudo image", goos: "darwin", euid: 501, hostDevice: false},
		{name: "darwin root login", goos: "darwin", euid: 0, hostDevice: true},
		{name: "linux sudo raw disk", goos: "linux", euid: 0, invoking: user, hostDevice: true, wantFD: true, wantExec: user},
		{name: "linux no sudo image", goos: "linux", euid: 1000, hostDevice: false, wantFD: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, runAs := Unprivileged(tc.goos, tc.euid, tc.invoking, disk, tc.hostDevice)
			plan := planLaunch(tc.goos, runAs)
			hostOS, accel := tc.goos, qemu.AccelTCG
			cfg := qemu.Config{Arch: qemu.ArchARM64, Accel: accel, HostOS: hostOS, MemoryMiB: 256,
				Kernel: "/k", Initrd: "/i", ConsoleLog: "/r/console.log", ControlSocket: "/r/control.sock",
				Disks: []qemu.Disk{{Path: "/dev/rdisk4s2", HostDevice: tc.hostDevice}}, RunAs: plan.qemuRunAs}
			if len(files) > 0 {
				cfg.Disks[0].FD = 3
			}
			args, err := cfg.Args()
			if err != nil {
				t.Fatal(err)
			}
			if got := len(files) == 1 && files[0] == disk; got != tc.wantFD {
				t.Errorf("disk passed as fd: %v, want %v", got, tc.wantFD)
			}
			if got := slices.Contains(args, "-add-fd"); got != tc.wantFD {
				t.Errorf("-add-fd rendered: %v, want %v", got, tc.wantFD)
			}
			attr := sysProcAttr(plan.exec)
			switch {
			case tc.wantExec == nil && attr.Credential != nil:
				t.Errorf("QEMU exec'd as uid %d, want the supervisor's own", attr.Credential.Uid)
			case tc.wantExec != nil && (attr.Credential == nil || attr.Credential.Uid != tc.wantExec.UID || attr.Credential.Gid != tc.wantExec.GID):
				t.Errorf("QEMU credential %+v, want uid %d gid %d", attr.Credential, tc.wantExec.UID, tc.wantExec.GID)
			case attr.Credential != nil && len(attr.Credential.Groups) != 0:
				t.Errorf("QEMU keeps supplementary groups %v", attr.Credential.Groups)
			}
			got := ""
			if i := slices.Index(args, "-run-with"); i >= 0 {
				got = args[i+1]
			}
			if got != tc.wantRunAs {
				t.Errorf("-run-with %q, want %q", got, tc.wantRunAs)
			}
		})
	}
}

// A QEMU too old for -run-with user= is refused with the fix, never run as root instead.
func TestRunWithUserNeedsQEMU91(t *testing.T) {
	dir := t.TempDir()
	fake := func(version string) string {
		p := filepath.Join(dir, "qemu-"+version)
		os.WriteFile(p, []byte("#!/bin/sh\necho 'QEMU emulator version "+version+"'\n"), 0o755)
		return p
	}
	if err := checkRunWithUser(fake("10.1.0")); err != nil {
		t.Errorf("10.1.0: %v", err)
	}
	err := checkRunWithUser(fake("8.2.2"))
	if err == nil || !strings.Contains(err.Error(), "needs QEMU 9.1.0 or newer") || !strings.Contains(err.Error(), "brew upgrade qemu") {
		t.Errorf("8.2.2: %v", err)
	}
}

// A runtime directory too deep for sun_path fails Start with the override to use, not with
// bind's "invalid argument" (finding 13).
func TestSocketPathTooLong(t *testing.T) {
	s := spec(t, "agent")
	s.RuntimeDir = filepath.Join(filepath.Dir(s.RuntimeDir), strings.Repeat("d", 100), "run")
	if err := os.MkdirAll(filepath.Dir(s.RuntimeDir), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "a unix socket allows") || !strings.Contains(err.Error(), "LUKSMOUNT_RUNTIME_DIR") {
		t.Fatalf("error = %v", err)
	}
	if _, err := os.Stat(s.RuntimeDir); !os.IsNotExist(err) {
		t.Errorf("runtime dir left behind: %v", err)
	}
}
