package initsys

import (
	"strings"
	"testing"
)

func TestParseModules(t *testing.T) {
	in := "# load order\n/lib/modules/k/virtio.ko\n\n  /lib/modules/k/virtio_pci.ko  \n"
	got, err := ParseModules(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "/lib/modules/k/virtio.ko" || got[1] != "/lib/modules/k/virtio_pci.ko" {
		t.Fatalf("ParseModules = %q", got)
	}
	if _, err := ParseModules(strings.NewReader("virtio.ko\n")); err == nil {
		t.Fatal("a relative module path was accepted")
	}
}

func TestParseCmdline(t *testing.T) {
	c := ParseCmdline("console=ttyS0 panic=-1 quiet luksmount.debug luksmount.watchdog=0\n")
	if !c.Flag("luksmount.debug") || !c.Flag("quiet") || c.Values["console"] != "ttyS0" {
		t.Fatalf("ParseCmdline = %+v", c)
	}
	if c.Flag("luksmount.watchdog") || !c.Has("luksmount.watchdog") {
		t.Fatal("key=0 must be present but off")
	}
	if c.Flag("luksmount.nothere") {
		t.Fatal("absent key reported on")
	}
}

func TestPowerOffMode(t *testing.T) {
	for _, tc := range []struct {
		arch string
		acpi bool
		want string
	}{{"amd64", true, "poweroff"}, {"amd64", false, "restart"}, {"arm64", false, "poweroff"}} {
		if got := PowerOffMode(tc.arch, tc.acpi); got != tc.want {
			t.Errorf("PowerOffMode(%s, acpi=%v) = %s; want %s", tc.arch, tc.acpi, got, tc.want)
		}
	}
}
