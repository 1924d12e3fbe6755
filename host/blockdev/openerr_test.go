package blockdev

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
)

// Finding 11: on macOS EPERM is TCC (Full Disk Access); EACCES on a write open as root is a
// write-protected medium.
func TestDarwinOpenError(t *testing.T) {
	perr := func(e syscall.Errno) error { return &fs.PathError{Op: "open", Path: "/dev/rdisk5s1", Err: e} }
	for _, tc := range []struct {
		name    string
		image   bool
		ro      bool
		euid    int
		err     error
		want    string
		is      error
		wantNot string
	}{
		{"write-protected card as root", false, false, 0, perr(syscall.EACCES), "use -o ro", ErrWriteProtected, "Full Disk Access"},
		{"EACCES read-only as root", false, true, 0, perr(syscall.EACCES), "permission denied", fs.ErrPermission, "write-protected"},
		{"no sudo", false, false, 501, perr(syscall.EACCES), "run luksmount with sudo", fs.ErrPermission, "write-protected"},
		{"TCC as root", false, false, 0, perr(syscall.EPERM), "Full Disk Access", fs.ErrPermission, "write-protected"},
		{"TCC read-only", false, true, 0, perr(syscall.EPERM), "Full Disk Access", fs.ErrPermission, ""},
		{"busy", false, false, 0, perr(syscall.EBUSY), "in use", ErrInUse, ""},
		{"image", true, false, 0, perr(syscall.EACCES), "permission denied", fs.ErrPermission, "Full Disk Access"},
		{"missing", false, false, 0, perr(syscall.ENOENT), "no such file", os.ErrNotExist, ""},
	} {
		err := darwinOpenError("/dev/rdisk5s1", tc.image, tc.ro, tc.euid, tc.err)
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !errors.Is(err, tc.is) || (tc.wantNot != "" && strings.Contains(msg, tc.wantNot)) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q (is %v: %v)", tc.name, msg, tc.is, errors.Is(err, tc.is))
		}
	}
}
