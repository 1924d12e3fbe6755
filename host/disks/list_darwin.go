package disks

import (
	"context"

	"github.com/luksmount/luksmount/host/diskutil"
)

// List returns the LUKS and ext devices on this Mac (diskutil + header reads).
func List(ctx context.Context) ([]Entry, error) {
	return FromDiskutil(ctx, diskutil.New(), OpenDevice)
}
