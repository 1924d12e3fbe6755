package nfsmount

import (
	"context"
	"os"
	"os/exec"
)

// New returns the Linux mounter (mount -t nfs, umount).
func New() Mounter { return &linuxMounter{r: ExecRunner{}} }

type linuxMounter struct{ r Runner }

func (m *linuxMounter) Mount(ctx context.Context, o Options) error {
	args, err := LinuxArgs(o)
	if err != nil {
		return err
	}
	// Linux needs root for an NFS mount unless fstab says "user"; no user attempt.
	o.UID = 0
	return runMount(ctx, m.r, o, "mount", args)
}

func (m *linuxMounter) Unmount(ctx context.Context, mountpoint string, force bool) error {
	return linuxUnmount(ctx, m.r, mountpoint, force)
}

// KernelHasNFSClient reports whether this kernel can mount NFS: nfs is
// registered in /proc/filesystems, or modprobe finds an nfs module to load.
func KernelHasNFSClient() bool {
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && FilesystemsListNFS(string(b)) {
		return true
	}
	return exec.Command("modprobe", "-n", "-q", "nfs").Run() == nil
}
