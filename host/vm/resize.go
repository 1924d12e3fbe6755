package vm

import (
	"context"
	"fmt"
	"strconv"
)

// BlockResize grows disk i of a running VM to size bytes through QMP block_resize on its raw
// node (host/qemu's names): QEMU truncates an image file to the new size (raw_co_truncate, then
// ftruncate in block/file-posix.c) and virtio-blk tells the guest its new capacity.
func BlockResize(ctx context.Context, qmpSocket string, i int, size int64) error {
	id := "disk" + strconv.Itoa(i)
	if err := qmpCall(ctx, qmpSocket, "block_resize", map[string]any{"node-name": id, "size": size}); err != nil {
		return fmt.Errorf("cannot grow %s to %d bytes: %w", id, size, err)
	}
	return nil
}
