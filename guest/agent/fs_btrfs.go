package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/pkg/control"
)

// btrfsSuper is what the agent reads of a btrfs superblock (at 64 KiB): how many devices the
// filesystem spans.
type btrfsSuper struct{ NumDevices uint64 }

// parseBtrfsSuper reads the primary superblock: magic "_BHRfS_M" at 0x40, num_devices at 0x88.
func parseBtrfsSuper(b []byte) (btrfsSuper, error) {
	if len(b) < 0x90 || string(b[0x40:0x48]) != "_BHRfS_M" {
		return btrfsSuper{}, errors.New("no btrfs superblock")
	}
	return btrfsSuper{NumDevices: binary.LittleEndian.Uint64(b[0x88:])}, nil
}

var readBtrfsSuper = func(dev string) (btrfsSuper, error) {
	f, err := os.Open(dev)
	if err != nil {
		return btrfsSuper{}, err
	}
	defer f.Close()
	b := make([]byte, 0x90)
	if _, err := f.ReadAt(b, 0x10000); err != nil {
		return btrfsSuper{}, err
	}
	return parseBtrfsSuper(b)
}

// btrfsDevices finds the other disks of a multi-device btrfs (same filesystem UUID) and returns
// them as device= options, so the kernel assembles it without a `btrfs device scan`. A
// filesystem with members missing is refused with a message naming how many, unless the user
// asked for degraded.
func (a *Agent) btrfsDevices(ctx context.Context, dev string, in blkid.Info, data string) ([]string, error) {
	sb, err := readBtrfsSuper(dev)
	if err != nil || sb.NumDevices <= 1 {
		return nil, nil // one device, or the kernel will say what is wrong
	}
	ds, err := a.disks()
	if err != nil {
		return nil, err
	}
	var opts []string
	for _, d := range ds {
		if d.Device == dev {
			continue
		}
		if o, err := blkid.Probe(ctx, a.deps.Run, d.Device); err == nil && o.Type == "btrfs" && o.UUID == in.UUID {
			opts = append(opts, "device="+d.Device)
		}
	}
	found := uint64(len(opts) + 1)
	if found < sb.NumDevices && !hasOpt(data, "degraded") {
		return nil, control.Errorf(control.CodeNotFound, "this btrfs filesystem spans %d drives but only %d %s attached; give all of them as one target joined with + (luksmount disk4+disk5), or mount with -o degraded,ro to copy data off",
			sb.NumDevices, found, map[bool]string{true: "is", false: "are"}[found == 1])
	}
	if len(opts) > 0 {
		a.tl.Logf("info", "btrfs spans %d drives: %s and %s", sb.NumDevices, dev, strings.TrimPrefix(strings.Join(opts, ", "), "device="))
	}
	return opts, nil
}

func hasOpt(data, name string) bool {
	for _, o := range strings.Split(data, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// withOpts appends filesystem options to a mount data string.
func withOpts(data string, more []string) string {
	if len(more) == 0 {
		return data
	}
	if data == "" {
		return strings.Join(more, ",")
	}
	return fmt.Sprintf("%s,%s", data, strings.Join(more, ","))
}
