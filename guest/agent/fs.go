package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/pkg/control"
)

// supportedFS is what luksmount mounts, for messages.
const supportedFS = "ext2/3/4, btrfs, xfs, exFAT, FAT12/16/32 and NTFS"

// fsDefaults are the options each filesystem gets before the user's (which may override them).
// FAT and exFAT keep no Unix modes: files show as rw-r--r--, directories as rwxr-xr-x (the
// kernel's masks, not the umask's rwxr-xr-x for every file); errors=remount-ro stops writes
// when the driver finds damage.
func fsDefaults(fstype string) []string {
	switch fstype {
	case "vfat":
		return []string{"utf8", "shortname=mixed", "fmask=0133", "dmask=0022", "errors=remount-ro"}
	case "exfat":
		return []string{"fmask=0133", "dmask=0022", "errors=remount-ro"}
	}
	return nil
}

// loadFS loads the kernel modules of fstype; a type the guest has none for is refused with a
// message that names what it can mount.
func (a *Agent) loadFS(fstype string) error {
	if a.deps.Features == nil {
		return nil
	}
	start := a.tl.Now()
	n, err := a.deps.Features("fs-" + fstype)
	if errors.Is(err, initsys.ErrNoFeature) {
		return control.Errorf(control.CodeUnsupportedFS, "the drive holds %s, which luksmount cannot mount (it mounts %s); nothing was changed", fstype, supportedFS)
	}
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot load the kernel modules for %s: %v", fstype, err)
	}
	if n > 0 {
		a.tl.Step("fs-modules", start, "%s: %d module(s)", fstype, n)
	}
	return nil
}

// mountFS mounts dev (blkid says in) with opts and returns the options it ended up with (an
// NTFS volume Windows left hibernated or unclean is mounted read-only).
func (a *Agent) mountFS(ctx context.Context, dev string, in blkid.Info, reqOpts []string, opts fsops.Options) (fsops.Options, error) {
	if err := a.loadFS(in.Type); err != nil {
		return opts, err
	}
	if d := fsDefaults(in.Type); d != nil {
		all := append(d, reqOpts...)
		if opts.ReadOnly {
			all = append(all, "ro") // a read-only device or mapping stays read-only
		}
		o, err := a.deps.SplitOptions(all)
		if err != nil {
			return opts, err
		}
		opts = o
	}
	if in.Type == "ntfs" {
		return a.mountNTFS(ctx, dev, opts)
	}
	if in.Type == "btrfs" {
		more, err := a.btrfsDevices(ctx, dev, in, opts.Data)
		if err != nil {
			return opts, err
		}
		opts.Data = withOpts(opts.Data, more)
	}
	return opts, a.deps.Mount(dev, fsops.Mountpoint, in.Type, opts)
}

// ntfs-3g's exit codes (ntfs-3g's volume.h, NTFS_VOLUME_*).
const (
	ntfsNotNTFS    = 12
	ntfsCorrupt    = 13
	ntfsHibernated = 14
	ntfsUnclean    = 15
)

// ntfsArgs builds the ntfs-3g command line. norecover: an unclean volume is refused instead
// of having its journal ($LogFile) wiped, which is what ntfs-3g does by default and which can
// lose what Windows had not written yet. windows_names: names Windows cannot open (a:b,
// trailing dots) are refused (EINVAL) rather than created. No "permissions": files keep the
// ACLs they inherit, so Windows can still open what the Mac wrote.
func ntfsArgs(dev string, opts fsops.Options) []string {
	// fmask/dmask: files rw-r--r--, directories rwxr-xr-x, as on FAT (ntfs-3g shows 0777 otherwise).
	o := []string{"norecover", "windows_names", "fmask=0133", "dmask=0022"}
	if opts.ReadOnly {
		o = append(o, "ro")
	}
	if opts.Data != "" {
		o = append(o, opts.Data)
	}
	return []string{"-o", strings.Join(o, ","), dev, fsops.Mountpoint}
}

// mountNTFS runs ntfs-3g (FUSE: Debian 12's kernels have no ntfs3). A volume Windows left
// hibernated (or with Fast Startup), not cleanly shut down, or marked for chkdsk (dirty) is
// mounted read-only with a message saying what to do in Windows; it is never "fixed" here (no
// ntfsfix, no remove_hiberfile), since that throws away what Windows had not written yet.
func (a *Agent) mountNTFS(ctx context.Context, dev string, opts fsops.Options) (fsops.Options, error) {
	if !opts.ReadOnly {
		// ntfs-3g ignores the dirty flag: read it here.
		if v, err := readNTFSVolume(dev); err == nil && v.Flags&fsops.NTFSVolumeDirty != 0 {
			ro, err := a.ntfsReadOnly(opts, "Windows marked it as needing a disk check (its dirty flag is set)",
				"start Windows, run `chkdsk /f X:` on it and shut down fully (Shift+Shut down), then mount again")
			if err != nil {
				return opts, err
			}
			opts = ro
		}
	}
	r, err := a.ntfs3g(ctx, dev, opts)
	if err != nil {
		return opts, err
	}
	why := ""
	switch r.ExitCode {
	case 0:
		// ntfs-3g falls back to read-only by itself (exit 0, "Falling back to read-only
		// mount") when hiberfil.sys says "hibr" or $LogFile is unclean (libntfs-3g volume.c,
		// NTFS_MNT_MAY_RDONLY): the kernel's mount flags say whether it did.
		if !opts.ReadOnly && mountedReadOnly(fsops.Mountpoint) {
			ro, err := a.ntfsReadOnly(opts, ntfsFallbackWhy(r.Stderr), ntfsShutdownAdvice)
			return ro, err
		}
		return opts, nil
	case ntfsHibernated:
		why = ntfsHibernatedWhy
	case ntfsUnclean:
		why = ntfsUncleanWhy
	}
	if why != "" && !opts.ReadOnly {
		ro, err := a.ntfsReadOnly(opts, why, ntfsShutdownAdvice)
		if err != nil {
			return opts, err
		}
		if r, err = a.ntfs3g(ctx, dev, ro); err != nil {
			return opts, err
		}
		if r.ExitCode == 0 {
			return ro, nil
		}
		opts = ro
	}
	return opts, ntfsError(dev, r)
}

const (
	ntfsHibernatedWhy  = "Windows left it hibernated (hibernation or Fast Startup)"
	ntfsUncleanWhy     = "Windows did not shut it down cleanly (or Fast Startup kept it open)"
	ntfsShutdownAdvice = "start Windows and shut it down fully (Shift+Shut down), or turn Fast Startup off (powercfg /h off), then mount again"
)

// ntfsFallbackWhy reads ntfs-3g's own reason from its messages (volume.c, logfile.c).
func ntfsFallbackWhy(stderr string) string {
	switch {
	case strings.Contains(stderr, "hibernated"):
		return ntfsHibernatedWhy
	case strings.Contains(stderr, "unclean"):
		return ntfsUncleanWhy
	}
	return "ntfs-3g found it in an unsafe state (Windows hibernated it or did not shut it down cleanly)"
}

// ntfsReadOnly logs why the volume is mounted read-only and returns read-only options whose
// Notice carries the same line to the user.
func (a *Agent) ntfsReadOnly(opts fsops.Options, why, advice string) (fsops.Options, error) {
	msg := fmt.Sprintf("the NTFS volume is mounted read-only: %s; to write to it, %s", why, advice)
	a.tl.Fault(faultFS, "warn", "%s", msg)
	ro, err := a.deps.SplitOptions([]string{"ro"})
	if err != nil {
		return opts, err
	}
	ro.Data, ro.Notice = opts.Data, msg
	return ro, nil
}

// readNTFSVolume and mountedReadOnly are replaced in tests.
var (
	readNTFSVolume = func(dev string) (fsops.NTFSVolumeInfo, error) {
		f, err := os.Open(dev)
		if err != nil {
			return fsops.NTFSVolumeInfo{}, err
		}
		defer f.Close()
		return fsops.ReadNTFSVolumeInfo(f)
	}
	mountedReadOnly = fsops.MountedReadOnly
)

func (a *Agent) ntfs3g(ctx context.Context, dev string, opts fsops.Options) (command.Result, error) {
	r, err := a.deps.Run.Run(ctx, command.Cmd{Name: "ntfs-3g", Args: ntfsArgs(dev, opts)})
	if err != nil {
		return r, control.Errorf(control.CodeInternal, "cannot run ntfs-3g: %v", err)
	}
	return r, nil
}

// ntfsError maps a failed ntfs-3g to a typed error with advice.
func ntfsError(dev string, r command.Result) error {
	msg := strings.TrimSpace(r.Stderr)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	var ce *control.Error
	switch r.ExitCode {
	case ntfsNotNTFS:
		ce = control.Errorf(control.CodeUnsupportedFS, "cannot mount %s: ntfs-3g sees no NTFS volume (%s)", dev, msg)
	case ntfsCorrupt:
		ce = control.Errorf(control.CodeNeedsRepair, "the NTFS volume is damaged (%s); nothing was changed: repair it in Windows with `chkdsk /f X:`", msg)
	case ntfsHibernated, ntfsUnclean:
		ce = control.Errorf(control.CodeNeedsRepair, "the NTFS volume is in use by Windows even read-only (%s): start Windows and shut it down fully (Shift+Shut down)", msg)
	default:
		ce = control.Errorf(control.CodeInternal, "cannot mount %s (ntfs): ntfs-3g exited with %d: %s", dev, r.ExitCode, msg)
	}
	ce.Detail = strings.TrimSpace(r.Stderr)
	return ce
}

// fsNote is for the mount step's log line: what the filesystem does not keep.
func fsNote(fstype string) string {
	switch fstype {
	case "vfat", "exfat":
		return fmt.Sprintf("; %s keeps no owners, modes, symlinks or hard links", fstype)
	case "ntfs":
		return "; NTFS through ntfs-3g: no hard links over NFS, modes and owners are not kept"
	}
	return ""
}

func fsName(fs string) string {
	if fs == "" {
		return "ext4"
	}
	return fs
}

// mkfs makes req's filesystem on target, showing mke2fs's progress for ext4.
func (a *Agent) mkfs(ctx context.Context, req control.FormatRequest, target string) error {
	fs := fsName(req.FS)
	p := a.startProgress("format", "creating "+fs+" on "+target)
	defer p.stop()
	if fs == "ext4" {
		return fsops.Mkfs(ctx, p.runner(a.deps.Run, "mkfs.ext4", parseMkfs), target, req.Label)
	}
	return fsops.MkfsAny(ctx, a.deps.Run, fs, target, req.Label)
}

// fixedAttrs: filesystems that keep no Unix modes or owners (nfsserver.Options.FixedAttrs).
func fixedAttrs(fstype string) bool { return fstype == "vfat" || fstype == "exfat" || fstype == "ntfs" }

// ignoresDirsync: filesystems on which MS_DIRSYNC does not make directory changes durable
// (btrfs has no IS_DIRSYNC path; FUSE passes nothing on), so the server fsyncs the directory.
func ignoresDirsync(fstype string) bool { return fstype == "btrfs" || fstype == "ntfs" }

// joinNotes joins the reasons a mount is read-only (the stack's, the filesystem's).
func joinNotes(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}
