package diskutil

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// KernelMounts reads the kernel's mount table with getfsstat(MNT_NOWAIT), which never waits on
// an unresponsive (NFS) file system.
func KernelMounts() ([]Mount, error) {
	buf := make([]unix.Statfs_t, 128)
	for {
		n, err := unix.Getfsstat(buf, unix.MNT_NOWAIT)
		if err != nil {
			return nil, err
		}
		if n < len(buf) {
			out := make([]Mount, n)
			for i, st := range buf[:n] {
				out[i] = Mount{From: cString(st.Mntfromname[:]), On: cString(st.Mntonname[:])}
			}
			return out, nil
		}
		buf = make([]unix.Statfs_t, 2*len(buf)) // a full buffer may have been cut short
	}
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
