package supervisor

import (
	"testing"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
)

// The guest sees the target's devices in the order addMembers attaches them, and guestDevName
// names each guest disk and partition after the device the user gave in that place.
func TestGuestDevNameFollowsTheAttachOrder(t *testing.T) {
	first := &blockdev.Device{Path: "/img/a.img", IsImage: true}
	members := []*blockdev.Device{{Path: "/dev/disk5", IsImage: false}, {Path: "/img/c.img", IsImage: true}, {Path: "/img/d.img", IsImage: true}}
	vs := vm.Spec{Config: qemu.Config{Disks: []qemu.Disk{{Path: first.Path}}}}
	addMembers(&vs, BootSpec{Device: first, Members: members}, nil)
	s := &sup{dev: first, stack: &stackInfo{members: members}}
	if len(vs.Config.Disks) != 4 {
		t.Fatalf("attached %d disks, want 4", len(vs.Config.Disks))
	}
	for i, d := range vs.Config.Disks {
		guest := "/dev/vd" + string(rune('a'+i))
		if got := s.guestDevName(guest); got != d.Path {
			t.Errorf("disk %d is attached as %s but guestDevName(%s) = %q", i, d.Path, guest, got)
		}
		if got, want := s.guestDevName(guest+"12"), "partition 12 of "+d.Path; got != want {
			t.Errorf("guestDevName(%s12) = %q, want %q", guest, got, want)
		}
	}
	for dev, want := range map[string]string{
		"/dev/vdb": "/dev/disk5", "/dev/vdd2": "partition 2 of /img/d.img",
		"/dev/vde": "/dev/vde", "/dev/vde1": "/dev/vde1", "/dev/vdb1x": "/dev/vdb1x", "/dev/vd": "/dev/vd",
		"/dev/md0": "/dev/md0", "/dev/mapper/x": "/dev/mapper/x", "/dev/sda": "/dev/sda",
	} {
		if got := s.guestDevName(dev); got != want {
			t.Errorf("guestDevName(%s) = %q, want %q", dev, got, want)
		}
	}
	// One device: only /dev/vda is the target's.
	one := &sup{dev: first}
	if got := one.guestDevName("/dev/vda1"); got != "partition 1 of /img/a.img" || one.guestDevName("/dev/vdb") != "/dev/vdb" {
		t.Errorf("single device: guestDevName(/dev/vda1) = %q", got)
	}
}

func TestValidPIM(t *testing.T) {
	for p, want := range map[string]bool{"1": true, "485": true, "2147468": true, "": false, "12a": false, " 1": false, "12345678": false} {
		if validPIM([]byte(p)) != want {
			t.Errorf("validPIM(%q) = %v", p, !want)
		}
	}
}

func TestGuestCmdline(t *testing.T) {
	env := map[string]string{}
	if got := guestCmdline(func(k string) string { return env[k] }); got != "" {
		t.Errorf("no %s: %q", EnvGuestDebug, got)
	}
	env[EnvGuestDebug] = "1"
	if got := guestCmdline(func(k string) string { return env[k] }); got != "luksmount.debug" {
		t.Errorf("%s=1: %q", EnvGuestDebug, got)
	}
}
