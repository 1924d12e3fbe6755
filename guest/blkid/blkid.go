// Package blkid finds the guest's disks in sysfs and asks blkid what is on them.
package blkid

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// SysBlock is where the kernel lists block devices.
const SysBlock = "/sys/block"

// Info is what blkid found on one device.
type Info struct {
	Type    string // TYPE: crypto_LUKS, ext4, vfat... ("" = nothing recognised)
	Label   string
	UUID    string
	Version string // VERSION (LUKS: "1" or "2")
}

// Args builds a low-level probe that bypasses the blkid cache (there is none in the guest).
func Args(dev string) []string { return []string{"-p", "-o", "export", dev} }

// Probe runs blkid on dev. Nothing recognised (exit 2) is an empty Info, not an error.
func Probe(ctx context.Context, run command.Runner, dev string) (Info, error) {
	r, err := run.Run(ctx, command.Cmd{Name: "blkid", Args: Args(dev)})
	if err != nil {
		return Info{}, err
	}
	switch r.ExitCode {
	case 0:
		return ParseExport(r.Stdout), nil
	case 2:
		return Info{}, nil
	default:
		return Info{}, fmt.Errorf("blkid %s exited with %d: %s", dev, r.ExitCode, strings.TrimSpace(r.Stderr))
	}
}

// ParseExport reads `blkid -o export` output: KEY=value lines with shell-style backslash escapes.
func ParseExport(out string) Info {
	var in Info
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = unescape(v)
		switch k {
		case "TYPE":
			in.Type = v
		case "LABEL":
			in.Label = v
		case "UUID":
			in.UUID = v
		case "VERSION":
			in.Version = v
		}
	}
	return in
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ListDisks returns the virtio and SCSI disks and their partitions under sysBlock, sorted by name,
// with size, logical block size and read-only flag from sysfs.
func ListDisks(sysBlock string) ([]control.Disk, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("cannot list disks: %w", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "vd") && !strings.HasPrefix(n, "sd") && !strings.HasPrefix(n, "nvme") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []control.Disk
	for _, n := range names {
		dir := filepath.Join(sysBlock, n)
		lbs := readInt(filepath.Join(dir, "queue", "logical_block_size"))
		out = append(out, disk(dir, n, int(lbs)))
		parts, _ := filepath.Glob(filepath.Join(dir, n+"*", "partition"))
		sort.Strings(parts)
		for _, p := range parts {
			pd := filepath.Dir(p)
			out = append(out, disk(pd, filepath.Base(pd), int(lbs)))
		}
	}
	return out, nil
}

func disk(dir, name string, lbs int) control.Disk {
	if lbs == 0 {
		lbs = 512
	}
	return control.Disk{
		Device:           "/dev/" + name,
		Size:             readInt(filepath.Join(dir, "size")) * 512, // sysfs counts 512-byte sectors
		LogicalBlockSize: lbs,
		ReadOnly:         readInt(filepath.Join(dir, "ro")) == 1,
	}
}

func readInt(p string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}
