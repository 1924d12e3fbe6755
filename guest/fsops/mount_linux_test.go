package fsops

import (
	"errors"
	"testing"

	"github.com/luksmount/luksmount/pkg/control"
	"golang.org/x/sys/unix"
)

func TestSplitOptions(t *testing.T) {
	o, err := SplitOptions([]string{"ro", "noatime,data=ordered", "", "commit=30", "nodiratime"})
	if err != nil {
		t.Fatal(err)
	}
	want := uintptr(unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_DIRSYNC)
	if o.Flags != want || o.Data != "data=ordered,commit=30" || !o.ReadOnly {
		t.Fatalf("SplitOptions = %#x %q ro=%v; want %#x %q ro", o.Flags, o.Data, o.ReadOnly, want, "data=ordered,commit=30")
	}
	o, _ = SplitOptions([]string{"ro,noatime", "rw,atime,relatime"})
	if o.Flags&unix.MS_RDONLY != 0 || o.Flags&unix.MS_NOATIME != 0 || o.Flags&unix.MS_RELATIME == 0 || o.ReadOnly {
		t.Fatalf("later options must override earlier ones: %#x", o.Flags)
	}
	for _, bad := range []string{"errors=panic", "bind", "remount"} {
		if _, err := SplitOptions([]string{bad}); !errors.Is(err, &control.Error{Code: control.CodeInvalidArgument}) {
			t.Errorf("SplitOptions(%s) = %v; want invalid-argument", bad, err)
		}
	}
}

func TestMountError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		ro   bool
		want control.Code
	}{
		{unix.EUCLEAN, false, control.CodeNeedsRepair},
		{unix.EINVAL, false, control.CodeNeedsRepair},
		{unix.EROFS, true, control.CodeNeedsRepair},
		{unix.EACCES, false, control.CodeInvalidArgument},
		{unix.EIO, false, control.CodeIOError},
		{unix.ENODEV, false, control.CodeUnsupportedFS},
		{unix.EBUSY, false, control.CodeDeviceBusy},
	} {
		err := MountError("/dev/vda", "ext4", tc.ro, tc.err)
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Code != tc.want {
			t.Errorf("MountError(%v) = %v; want %s", tc.err, err, tc.want)
		}
	}
}
