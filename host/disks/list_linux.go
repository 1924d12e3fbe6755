package disks

import (
	"context"
	"fmt"
	"os/exec"
)

// List returns the LUKS and ext devices on this host (lsblk + header reads).
func List(ctx context.Context) ([]Entry, error) {
	out, err := exec.CommandContext(ctx, "lsblk", LsblkArgs...).Output()
	if err != nil {
		return nil, fmt.Errorf("cannot list block devices with lsblk (util-linux): %w", err)
	}
	return FromLsblk(out, OpenDevice)
}
