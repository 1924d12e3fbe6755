package nfsmount

import "context"

// New returns the macOS mounter (/sbin/mount_nfs, umount, diskutil).
func New() Mounter { return &darwinMounter{r: ExecRunner{}} }

type darwinMounter struct{ r Runner }

func (m *darwinMounter) Mount(ctx context.Context, o Options) error {
	args, err := DarwinArgs(o)
	if err != nil {
		return err
	}
	if o.UID > 0 && o.Groups == nil {
		o.Groups = userGroups(ctx, m.r, o.UID)
	}
	return runMount(ctx, m.r, o, "/sbin/mount_nfs", args)
}

func (m *darwinMounter) Unmount(ctx context.Context, mountpoint string, force bool) error {
	return darwinUnmount(ctx, m.r, mountpoint, force)
}
