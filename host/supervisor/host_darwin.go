package supervisor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/diskutil"
)

func canMountNFS() (bool, string) { return true, "" }

// checkNotMounted refuses a partition macOS has mounted: the VM writing under a mounted
// filesystem would corrupt it.
func checkNotMounted(dev *blockdev.Device) error {
	if dev.IsImage {
		return nil
	}
	name := strings.TrimPrefix(strings.TrimPrefix(dev.Path, "/dev/"), "r")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	info, err := diskutil.New().Info(ctx, name)
	if err != nil {
		return nil // diskutil unavailable: the exclusive open still protects mounted volumes
	}
	if info.MountPoint != "" {
		whole := blockdev.WholeDiskName(name)
		return fmt.Errorf("macOS has %s mounted at %s: %w; run `diskutil unmountDisk %s` first", name, info.MountPoint, blockdev.ErrInUse, whole)
	}
	return nil
}
