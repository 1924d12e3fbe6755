package diskutil

import (
	"errors"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/blockdev"
)

var fixtureMounts = []Mount{
	{"/dev/disk3s1s1", "/"},
	{"devfs", "/dev"},
	{"/dev/disk3s5", "/System/Volumes/Data"},
	{"/dev/disk5s1", "/Volumes/BOOT"},
	{"127.0.0.1:/", "/Volumes/backup"},
	{"/dev/disk12s1", "/Volumes/Other"},
}

func TestMountedOn(t *testing.T) {
	for name, want := range map[string]string{
		"disk5s1": "/Volumes/BOOT", "/dev/rdisk5s1": "/Volumes/BOOT", "disk5": "/Volumes/BOOT", // a whole disk: any slice
		"disk5s2": "", "disk1": "", "disk4s1": "", "disk3s5": "/System/Volumes/Data",
	} {
		if _, on := MountedOn(fixtureMounts, name); on != want {
			t.Errorf("MountedOn(%s) = %q, want %q", name, on, want)
		}
	}
}

func TestMountState(t *testing.T) {
	boom := errors.New("boom")
	notMounted := &Info{DeviceIdentifier: "disk4s2"}
	for _, tc := range []struct {
		name      string
		dev       string
		mountsErr error
		info      *Info
		infoErr   error
		wantOn    string
		wantErr   bool
	}{
		{"both say free", "disk4s2", nil, notMounted, nil, "", false},
		{"kernel says mounted", "disk5s1", nil, notMounted, nil, "/Volumes/BOOT (disk5s1)", false},
		{"diskutil says mounted", "disk4s2", nil, &Info{MountPoint: "/Volumes/X"}, nil, "/Volumes/X", false},
		{"diskutil failed, kernel table settles it", "disk4s2", nil, nil, boom, "", false},
		{"kernel failed, diskutil settles it", "disk4s2", boom, notMounted, nil, "", false},
		{"kernel failed, diskutil says mounted", "disk4s2", boom, &Info{MountPoint: "/Volumes/X"}, nil, "/Volumes/X", false},
		{"diskutil failed, kernel says mounted", "disk5", nil, nil, boom, "/Volumes/BOOT (disk5s1)", false},
		{"neither answered", "disk4s2", boom, nil, boom, "", true},
	} {
		on, err := MountState(tc.dev, fixtureMounts, tc.mountsErr, tc.info, tc.infoErr)
		if on != tc.wantOn || (err != nil) != tc.wantErr {
			t.Errorf("%s: %q, %v; want %q, error %v", tc.name, on, err, tc.wantOn, tc.wantErr)
		}
		if err != nil && (!errors.Is(err, ErrMountStateUnknown) || !strings.Contains(err.Error(), "boom")) {
			t.Errorf("%s: error %q", tc.name, err)
		}
	}
}

func TestCheckNotMountedMessages(t *testing.T) {
	boom := errors.New("exit status 1: Could not find disk")
	err := CheckNotMounted("/dev/rdisk5s1", fixtureMounts, nil, nil, boom)
	if !errors.Is(err, blockdev.ErrInUse) || !strings.Contains(err.Error(), "macOS has disk5s1 mounted at /Volumes/BOOT") || !strings.Contains(err.Error(), "diskutil unmountDisk disk5") {
		t.Errorf("mounted: %v", err)
	}
	err = CheckNotMounted("/dev/rdisk4s2", nil, boom, nil, boom)
	if !errors.Is(err, ErrMountStateUnknown) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "diskutil info disk4s2") || !strings.Contains(err.Error(), "diskutil unmountDisk disk4") {
		t.Errorf("unknown: %v", err)
	}
	if err := CheckNotMounted("/dev/rdisk4s2", fixtureMounts, nil, &Info{DeviceIdentifier: "disk4s2"}, nil); err != nil {
		t.Errorf("free: %v", err)
	}
}

// Finding 6 of the macOS review: a mounted sibling volume is named, with what to use instead of
// Eject; none, an image path or a whole disk says nothing.
func TestSiblingWarning(t *testing.T) {
	mounts := []Mount{{"/dev/disk3s1", "/"}, {"/dev/disk4s1", "/Volumes/BOOT"}, {"/dev/disk4s3", "/Volumes/DATA"}}
	w := SiblingWarning("/dev/rdisk4s2", mounts)
	for _, want := range []string{"disk4 also holds /Volumes/BOOT, /Volumes/DATA", "ejects all of disk4, disk4s2 included", "`diskutil unmount /Volumes/BOOT`"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q lacks %q", w, want)
		}
	}
	for _, name := range []string{"disk5s1", "disk4", "/Users/me/disk.img"} {
		if w := SiblingWarning(name, mounts); w != "" {
			t.Errorf("%s: %q, want none", name, w)
		}
	}
	if w := SiblingWarning("disk4s1", []Mount{{"/dev/disk4s1", "/Volumes/BOOT"}, {"/dev/disk40s1", "/Volumes/X"}}); w != "" {
		t.Errorf("only itself (and another disk's slice) mounted: %q", w)
	}
}
