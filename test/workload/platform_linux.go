package workload

import (
	"errors"

	"golang.org/x/sys/unix"
)

// utimeOmit leaves a timestamp unchanged in utimensat.
const utimeOmit = unix.UTIME_OMIT

const nfsSuperMagic = 0x6969

// isNFS reports whether dir is on an NFS mount.
func isNFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == nfsSuperMagic
}

// isChmodNotAllowed reports the errors an unprivileged chmod of special bits gets.
func isChmodNotAllowed(err error) bool { return errors.Is(err, unix.EPERM) }
