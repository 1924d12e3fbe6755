package fsops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

func TestMkfsCmd(t *testing.T) {
	for _, tc := range []struct{ fs, label, want string }{
		{"", "", "mkfs.ext4 -F -m0 -E lazy_itable_init=0,lazy_journal_init=0 /dev/x"},
		{"btrfs", "B", "mkfs.btrfs -f -L B /dev/x"},
		{"xfs", "X", "mkfs.xfs -f -L X /dev/x"},
		{"exfat", "é", "mkfs.exfat -L é /dev/x"},
		{"vfat", "usb key", "mkfs.fat -I -n USB KEY /dev/x"},
		{"ntfs", "Data", "mkntfs -Q -F -L Data /dev/x"},
	} {
		c, err := MkfsCmd(tc.fs, "/dev/x", tc.label)
		if err != nil {
			t.Fatalf("%s: %v", tc.fs, err)
		}
		if got := c.String(); got != tc.want {
			t.Errorf("%s: %q; want %q", tc.fs, got, tc.want)
		}
	}
	for _, tc := range []struct{ fs, label string }{
		{"zfs", ""}, {"xfs", "thirteen-char"}, {"vfat", "twelve chars"}, {"vfat", "a:b"}, {"exfat", "twelve chars"},
	} {
		if _, err := MkfsCmd(tc.fs, "/dev/x", tc.label); !errors.Is(err, &control.Error{Code: control.CodeInvalidArgument}) {
			t.Errorf("MkfsCmd(%q, label %q) = %v; want invalid-argument", tc.fs, tc.label, err)
		}
	}
}

func TestMkfsAnyTooSmall(t *testing.T) {
	f := &fakeRun{r: command.Result{ExitCode: 1, Stderr: "Filesystem must be larger than 300MB.\n"}}
	err := MkfsAny(context.Background(), f, "xfs", "/dev/x", "")
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeInvalidArgument || !strings.Contains(ce.Message, "too small for xfs") {
		t.Fatalf("MkfsAny = %v; want invalid-argument saying the device is too small", err)
	}
}
