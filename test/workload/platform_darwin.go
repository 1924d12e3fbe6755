package workload

import (
	"errors"

	"golang.org/x/sys/unix"
)

// utimeOmit leaves a timestamp unchanged in utimensat (UTIME_OMIT in <sys/stat.h>).
const utimeOmit = -2

// isNFS reports whether dir is on an NFS mount.
func isNFS(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return false
	}
	return unix.ByteSliceToString(st.Fstypename[:]) == "nfs"
}

// isChmodNotAllowed reports the errors an unprivileged chmod of special bits gets (EFTYPE: sticky on a
// file).
func isChmodNotAllowed(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EFTYPE)
}
