package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Unplug makes disk i of a running VM fail every read, write and flush with EIO, as a USB drive
// does when it is pulled out: QEMU inserts a blkdebug node between the disk's raw format node and
// its file (blockdev-reopen), so the guest sees I/O errors and QEMU emits BLOCK_IO_ERROR. Replug
// undoes it. For fault-injection tests and `make soak`; node names are host/qemu's.
func Unplug(ctx context.Context, qmpSocket string, i int) error {
	id := "disk" + strconv.Itoa(i)
	eio := func(event string) map[string]any {
		return map[string]any{"event": event, "errno": 5, "immediately": true}
	}
	if err := qmpCall(ctx, qmpSocket, "blockdev-add", map[string]any{
		"driver": "blkdebug", "node-name": id + "-unplugged", "image": id + "-file",
		"inject-error": []any{eio("read_aio"), eio("write_aio"), eio("flush_to_disk"), eio("flush_to_os")},
	}); err != nil {
		return fmt.Errorf("unplug %s: %w", id, err)
	}
	return reopenRaw(ctx, qmpSocket, id, id+"-unplugged")
}

func reopenRaw(ctx context.Context, qmpSocket, id, file string) error {
	return qmpCall(ctx, qmpSocket, "blockdev-reopen", map[string]any{"options": []any{
		map[string]any{"driver": "raw", "node-name": id, "file": file, "read-only": false},
	}})
}

// qmpCall runs one QMP command with arguments on a fresh connection.
func qmpCall(ctx context.Context, socket, command string, args any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("cannot connect to QMP at %s: %w", socket, err)
	}
	defer c.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Second)
	}
	c.SetDeadline(dl)
	r := bufio.NewReader(c)
	if _, err := qmpRead(r); err != nil {
		return fmt.Errorf("QMP greeting: %w", err)
	}
	enc := json.NewEncoder(c)
	for _, m := range []map[string]any{{"execute": "qmp_capabilities"}, {"execute": command, "arguments": args}} {
		if err := enc.Encode(m); err != nil {
			return err
		}
		for {
			msg, err := qmpRead(r)
			if err != nil {
				return fmt.Errorf("QMP %s: %w", m["execute"], err)
			}
			if msg.Event != "" {
				continue
			}
			if msg.Error != nil {
				return fmt.Errorf("QMP %s: %s", m["execute"], msg.Error.Desc)
			}
			break
		}
	}
	return nil
}
