package fsops

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/luksmount/luksmount/pkg/control"
	"golang.org/x/sys/unix"
)

// flagOpts are the generic options mount(8) turns into MS_* flags; set clears the bits in clear.
var flagOpts = map[string]struct{ set, clear uintptr }{
	"ro":          {unix.MS_RDONLY, 0},
	"rw":          {0, unix.MS_RDONLY},
	"nosuid":      {unix.MS_NOSUID, 0},
	"suid":        {0, unix.MS_NOSUID},
	"nodev":       {unix.MS_NODEV, 0},
	"dev":         {0, unix.MS_NODEV},
	"noexec":      {unix.MS_NOEXEC, 0},
	"exec":        {0, unix.MS_NOEXEC},
	"sync":        {unix.MS_SYNCHRONOUS, 0},
	"async":       {0, unix.MS_SYNCHRONOUS},
	"dirsync":     {unix.MS_DIRSYNC, 0},
	"noatime":     {unix.MS_NOATIME, unix.MS_RELATIME | unix.MS_STRICTATIME},
	"atime":       {0, unix.MS_NOATIME},
	"nodiratime":  {unix.MS_NODIRATIME, 0},
	"diratime":    {0, unix.MS_NODIRATIME},
	"relatime":    {unix.MS_RELATIME, unix.MS_NOATIME | unix.MS_STRICTATIME},
	"norelatime":  {0, unix.MS_RELATIME},
	"strictatime": {unix.MS_STRICTATIME, unix.MS_NOATIME | unix.MS_RELATIME},
	"lazytime":    {unix.MS_LAZYTIME, 0},
	"nolazytime":  {0, unix.MS_LAZYTIME},
	"defaults":    {0, 0},
}

// SplitOptions turns mount options (each may itself be comma-separated) into MS_* flags and the
// filesystem's data string. nodev and nosuid are always set: nothing on the drive runs in the guest.
// dirsync is always set too: NFSv3 promises that a reply to REMOVE, RENAME, CREATE, MKDIR, LINK or
// SYMLINK means the change is on disk (a client's fsync of a directory sends nothing), which is
// what makes "write a temp file, fsync, rename" safe across a crash.
func SplitOptions(opts []string) (Options, error) {
	o := Options{Flags: unix.MS_NODEV | unix.MS_NOSUID | unix.MS_DIRSYNC}
	var data []string
	for _, opt := range opts {
		for _, w := range strings.Split(opt, ",") {
			w = strings.TrimSpace(w)
			if w == "" {
				continue
			}
			if why, bad := forbidden[w]; bad {
				return Options{}, control.Errorf(control.CodeInvalidArgument, "mount option %s is not allowed: %s", w, why)
			}
			if f, ok := flagOpts[w]; ok {
				o.Flags = o.Flags&^f.clear | f.set
				continue
			}
			switch w {
			case "bind", "rbind", "remount", "move", "shared", "private", "slave", "unbindable":
				return Options{}, control.Errorf(control.CodeInvalidArgument, "mount option %s is not a filesystem option", w)
			}
			data = append(data, w)
		}
	}
	o.Data = strings.Join(data, ",")
	o.ReadOnly = o.Flags&unix.MS_RDONLY != 0
	return o, nil
}

// Mount mounts dev (a filesystem of type fstype) on target.
func Mount(dev, target, fstype string, opts Options) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return control.Errorf(control.CodeInternal, "cannot create %s: %v", target, err)
	}
	err := unix.Mount(dev, target, fstype, opts.Flags, opts.Data)
	if err == nil {
		return nil
	}
	return MountError(dev, fstype, opts.ReadOnly, err)
}

// MountError maps a mount(2) errno to a typed error with advice.
func MountError(dev, fstype string, readOnly bool, err error) error {
	what := fmt.Sprintf("cannot mount %s (%s)", dev, fstype)
	var code control.Code
	var advice string
	switch {
	case errors.Is(err, unix.EUCLEAN), errors.Is(err, unix.EBADMSG):
		code, advice = control.CodeNeedsRepair, "the kernel found it damaged (EUCLEAN: structure needs cleaning, EBADMSG: a checksum failed); run `luksmount check --repair`"
	case errors.Is(err, unix.EROFS) && readOnly:
		code, advice = control.CodeNeedsRepair, "the journal must be replayed but the device is read-only; attach it writable so ext4 can recover it, or check it first"
	case errors.Is(err, unix.EROFS), errors.Is(err, unix.EACCES):
		code, advice = control.CodeInvalidArgument, "the device is read-only; mount it read-only (ro)"
	case errors.Is(err, unix.EINVAL):
		code, advice = control.CodeNeedsRepair, "the kernel refused the filesystem or its options; run `luksmount check` to look for damage"
	case errors.Is(err, unix.EIO):
		code, advice = control.CodeIOError, "the disk returned I/O errors; copy its data off with ddrescue"
	case errors.Is(err, unix.ENODEV):
		code, advice = control.CodeUnsupportedFS, "this guest kernel cannot mount that filesystem type"
	case errors.Is(err, unix.EBUSY):
		code, advice = control.CodeDeviceBusy, "it is already mounted or in use"
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO):
		code, advice = control.CodeNotFound, "the device is gone"
	default:
		code, advice = control.CodeInternal, "see the kernel log"
	}
	return control.Errorf(code, "%s: %v; %s", what, err, advice)
}

// Unmount unmounts target; lazy detaches it even if busy (used only when forced).
func Unmount(target string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	return unix.Unmount(target, flags)
}

// IsBusy reports whether err from Unmount means files are still in use.
func IsBusy(err error) bool { return errors.Is(err, unix.EBUSY) }

// MountedReadOnly reports whether the filesystem mounted at path is read-only (ST_RDONLY).
func MountedReadOnly(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Flags&unix.ST_RDONLY != 0
}
