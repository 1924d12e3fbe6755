//go:build linux || darwin

package workload

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Operations a filesystem may not support, for Options.Refuses.
const (
	RefuseSymlink  = "symlink"
	RefuseHardlink = "hardlink"
	RefuseChmod    = "chmod"
	RefuseChown    = "chown"
	RefuseMknod    = "mknod"
)

// enotsupp is Linux's kernel-internal ENOTSUPP (524), which its NFS client passes on for
// NFS3ERR_NOTSUPP; macOS gives ENOTSUP.
const enotsupp = syscall.Errno(524)

// refusedRight reports whether err is an honest refusal: EPERM, EOPNOTSUPP/ENOTSUP, EINVAL,
// never EIO and never success.
func refusedRight(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, enotsupp)
}

// runRefused checks that each operation in Options.Refuses fails with the right error and
// changes nothing: the adapted expectation for FAT, exFAT and NTFS, whose scenarios for those
// operations cannot pass.
func runRefused(e *env) error {
	if len(e.opts.Refuses) == 0 {
		return e.skip("no operation is expected to be refused here")
	}
	f := e.path("f")
	if err := writeFile(f, []byte("data"), 0o644); err != nil {
		return err
	}
	before, err := lstat(f)
	if err != nil {
		return err
	}
	check := func(op string, err error, gone string) error {
		if err == nil {
			return fmt.Errorf("%s succeeded; this filesystem cannot do it, so it must fail", op)
		}
		if !refusedRight(err) {
			return fmt.Errorf("%s failed with %v; want EPERM, ENOTSUP or EINVAL (never EIO)", op, err)
		}
		if gone != "" {
			if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s was refused but left %s behind (%v)", op, gone, err)
			}
		}
		e.note("%s refused: %v", op, err)
		return nil
	}
	for _, op := range e.opts.Refuses {
		var err error
		switch op {
		case RefuseSymlink:
			err = check("symlink", os.Symlink("f", e.path("link")), e.path("link"))
		case RefuseHardlink:
			err = check("link", os.Link(f, e.path("hard")), e.path("hard"))
		case RefuseMknod:
			err = check("mkfifo", unix.Mkfifo(e.path("fifo"), 0o644), e.path("fifo"))
		case RefuseChmod:
			err = check("chmod 0700", os.Chmod(f, 0o700), "")
		case RefuseChown:
			err = check("chown 4242:4242", os.Chown(f, 4242, 4242), "")
		default:
			return fmt.Errorf("unknown refused operation %q", op)
		}
		if err != nil {
			return err
		}
	}
	after, err := lstat(f)
	if err != nil {
		return err
	}
	if after.Mode != before.Mode || after.Uid != before.Uid || after.Gid != before.Gid || after.Nlink != 1 {
		return fmt.Errorf("refused operations changed the file: mode %o uid %d gid %d nlink %d, was mode %o uid %d gid %d",
			after.Mode, after.Uid, after.Gid, after.Nlink, before.Mode, before.Uid, before.Gid)
	}
	return verifyFile(f, []byte("data"))
}
