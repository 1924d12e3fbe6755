package nfsmount

import (
	"context"
	"fmt"
)

// darwinUnmount tries a clean umount; with force it falls back to
// `diskutil unmount force`, which also tears down a dead NFS mount.
func darwinUnmount(ctx context.Context, r Runner, mountpoint string, force bool) error {
	out, err := r.Run(ctx, nil, "/sbin/umount", mountpoint)
	if err == nil {
		return nil
	}
	if !force {
		return fmt.Errorf("cannot unmount %s: %w", mountpoint, commandError("umount", []string{mountpoint}, out, err))
	}
	out, err = r.Run(ctx, nil, "/usr/sbin/diskutil", "unmount", "force", mountpoint)
	if err == nil {
		return nil
	}
	out2, err2 := r.Run(ctx, nil, "/sbin/umount", "-f", mountpoint)
	if err2 == nil {
		return nil
	}
	return fmt.Errorf("cannot force-unmount %s: %w; %w", mountpoint,
		commandError("diskutil", []string{"unmount", "force", mountpoint}, out, err),
		commandError("umount", []string{"-f", mountpoint}, out2, err2))
}

// linuxUnmount: umount, then (force) umount -f to abort RPCs to a dead
// server, then a lazy detach so the mount point is at least released.
func linuxUnmount(ctx context.Context, r Runner, mountpoint string, force bool) error {
	out, err := r.Run(ctx, nil, "umount", mountpoint)
	if err == nil {
		return nil
	}
	if !force {
		return fmt.Errorf("cannot unmount %s: %w", mountpoint, commandError("umount", []string{mountpoint}, out, err))
	}
	if _, err := r.Run(ctx, nil, "umount", "-f", mountpoint); err == nil {
		return nil
	}
	out, err = r.Run(ctx, nil, "umount", "-l", mountpoint)
	if err != nil {
		return fmt.Errorf("cannot force-unmount %s: %w", mountpoint, commandError("umount", []string{"-l", mountpoint}, out, err))
	}
	return nil
}
