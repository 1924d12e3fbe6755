package supervisor

import (
	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/nfsmount"
)

func canMountNFS() (bool, string) {
	if nfsmount.KernelHasNFSClient() {
		return true, ""
	}
	return false, "this Linux kernel has no NFS client (no nfs in /proc/filesystems and no nfs module)"
}

// checkNotMounted: on Linux, blockdev opens devices O_EXCL, which fails for a mounted one.
func checkNotMounted(*blockdev.Device) error { return nil }

// siblingWarning: only macOS ejects a whole disk for one of its volumes.
func siblingWarning(*blockdev.Device) string { return "" }
