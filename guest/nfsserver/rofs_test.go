//go:build linux

package nfsserver

import (
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// TestFilesystemTurnedReadOnlyAnswersROFS: when the filesystem under a read-write export turns
// read-only (ext4's errors=remount-ro after an error, issue 11.5), writes answer NFS3ERR_ROFS, not
// EIO, and reads keep working. A tmpfs remounted read-only stands in for ext4 (needs root, as the
// MKNOD tests do).
func TestFilesystemTurnedReadOnlyAnswersROFS(t *testing.T) {
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount tmpfs (the unit tests run as root, as CI does): %v", err)
	}
	defer unix.Unmount(root, unix.MNT_DETACH)
	mustWrite(t, filepath.Join(root, "f"), "data written before the error")
	mustWrite(t, filepath.Join(root, "g"), "data written before the error")
	c := dial(t, start(t, ours, root))
	rootH := c.mount()
	_, fh, _ := c.lookup(rootH, "f")
	_, gh, _ := c.lookup(rootH, "g") // first opened after the remount, by READ
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	const rofs = 30
	write, _ := c.nfsCall(7, args(func(w *xdr.Writer) {
		w.Opaque(fh)
		w.Uint64(0)
		w.Uint32(4)
		w.Uint32(2) // FILE_SYNC
		w.Opaque([]byte("more"))
	}))
	create, _ := c.nfsCall(8, args(func(w *xdr.Writer) {
		w.Opaque(rootH)
		w.String("new")
		w.Uint32(0) // UNCHECKED
		emptySattr(w)
	}))
	mode := uint32(0o600)
	setattr, _ := c.nfsCall(2, sattrArgs(fh, &mode, nil, nil, nil))
	remove, _ := c.nfsCall(12, args(dirop(rootH, "f")))
	for name, st := range map[string]uint32{"WRITE": write, "CREATE": create, "SETATTR": setattr, "REMOVE": remove} {
		if st != rofs {
			t.Errorf("%s on a filesystem that turned read-only: status %d, want NFS3ERR_ROFS (30)", name, st)
		}
	}
	for name, h := range map[string][]byte{"f (written to)": fh, "g (only read)": gh} {
		st, r := c.nfsCall(6, args(func(w *xdr.Writer) {
			w.Opaque(h)
			w.Uint64(0)
			w.Uint32(100)
		}))
		if readPostOp(r); st != 0 {
			t.Fatalf("READ of %s after the filesystem turned read-only: status %d", name, st)
		}
		r.Uint32()
		r.Bool()
		if got := string(r.Opaque(100)); got != "data written before the error" {
			t.Fatalf("READ of %s: %q", name, got)
		}
	}
}
