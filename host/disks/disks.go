// Package disks builds the model behind `luksmount list`: the drives and
// partitions that hold a LUKS volume or an ext file system, with what their
// headers say (type, label, UUID, KDF memory). Linux asks lsblk, macOS asks
// diskutil; either way each candidate's header is read with pkg/luksheader,
// so the answer does not depend on the host recognising LUKS.
package disks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/diskutil"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/stackprobe"
)

// Entry is one listed device. JSON keys are stable: scripts rely on them.
type Entry struct {
	Device       string `json:"device"` // what to pass to `luksmount`
	Size         int64  `json:"size"`   // bytes
	Type         string `json:"type"`   // luks1, luks2, ext2, ext3, ext4
	Label        string `json:"label"`
	UUID         string `json:"uuid"`
	MountedAt    string `json:"mounted_at"`         // where the host has it (or its open LUKS mapping) mounted
	KDFMemoryKiB int    `json:"kdf_memory_kib"`     // largest keyslot memory cost (LUKS2 argon2)
	Error        string `json:"error,omitempty"`    // why the header could not be read
	Note         string `json:"note,omitempty"`     // e.g. "opened on this host as luks-..."
	BlockSize    int    `json:"logical_block_size"` // bytes, 0 if unknown
	// A partition table's entries (stack.go); lvm and raid feed Groups.
	Partitions []Partition `json:"partitions,omitempty"`
	lvm        *stackprobe.PV
	raid       *stackprobe.RAID
}

// Opener opens a device for reading its header.
type Opener func(path string) (io.ReaderAt, io.Closer, error)

// OpenDevice opens path read-only without locking it, so listing works
// while luksmount is serving the device. Reads go through an aligned reader
// (4096 covers 512- and 4096-byte sectors) because macOS raw disks refuse
// unaligned I/O.
func OpenDevice(path string) (io.ReaderAt, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return blockdev.NewAlignedReader(f, 4096, 0), f, nil
}

// probe reads the header at path and fills e; it returns false when the
// device holds neither LUKS nor ext. An unreadable device is kept only when
// hinted (the host already says it is LUKS, ext or a Linux partition), so a
// user without the rights to read headers still sees their drive and why.
func probe(e *Entry, path string, open Opener, hinted bool) bool {
	r, c, err := open(path)
	if err != nil {
		e.Error = fmt.Sprintf("cannot read header: %v", err)
		return hinted
	}
	defer c.Close()
	id, err := luksheader.Identify(r)
	if err != nil {
		e.Error = fmt.Sprintf("cannot read header: %v", err)
		return hinted
	}
	switch {
	case id.Kind.IsLUKS():
		e.Type = id.Kind.String()
		if id.Err != nil {
			e.Error = id.Err.Error()
			return true
		}
		e.Label, e.UUID, e.KDFMemoryKiB = id.Label, id.UUID, id.LUKS.MaxKDFMemoryKiB()
		if id.LUKS.FromSecondary {
			e.Note = joinNote(e.Note, "primary LUKS header damaged; secondary copy in use")
		}
	case id.Kind.IsExt():
		e.Type, e.Label, e.UUID = id.Kind.String(), id.Label, id.UUID
	default:
		return probeStack(e, r, e.Size)
	}
	return true
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// lsblk output (`lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,LABEL,UUID,MOUNTPOINT,LOG-SEC`).
type lsblkOutput struct {
	BlockDevices []lsblkDevice `json:"blockdevices"`
}

type lsblkDevice struct {
	Name       string        `json:"name"`
	Path       string        `json:"path"`
	Size       flexInt       `json:"size"`
	Type       string        `json:"type"`
	FSType     string        `json:"fstype"`
	Label      string        `json:"label"`
	UUID       string        `json:"uuid"`
	Mountpoint string        `json:"mountpoint"`
	LogSec     flexInt       `json:"log-sec"`
	Children   []lsblkDevice `json:"children"`
}

// flexInt accepts numbers and, from util-linux before 2.33, numeric strings.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*f = flexInt(v)
	return nil
}

// LsblkArgs are the arguments FromLsblk expects lsblk to have been run with.
var LsblkArgs = []string{"-J", "-b", "-o", "NAME,PATH,SIZE,TYPE,FSTYPE,LABEL,UUID,MOUNTPOINT,LOG-SEC"}

// FromLsblk builds the list from lsblk JSON, reading each candidate's header.
// Candidates: disks without partitions, partitions, and loop devices, whose
// lsblk fstype is LUKS, ext, or unknown (lsblk without root may not know).
func FromLsblk(lsblkJSON []byte, open Opener) ([]Entry, error) {
	var out lsblkOutput
	if err := json.Unmarshal(lsblkJSON, &out); err != nil {
		return nil, fmt.Errorf("cannot parse lsblk output: %w", err)
	}
	var entries []Entry
	var walk func(d lsblkDevice)
	walk = func(d lsblkDevice) {
		candidate := (d.Type == "disk" || d.Type == "part" || d.Type == "loop") &&
			(d.FSType == "" || d.FSType == "crypto_LUKS" || strings.HasPrefix(d.FSType, "ext") || stackFSType[d.FSType])
		// A partitioned disk is listed through its partitions.
		if d.Type == "disk" && hasPartitions(d) {
			candidate = false
		}
		if candidate {
			path := d.Path
			if path == "" {
				path = "/dev/" + d.Name
			}
			e := Entry{Device: path, Size: int64(d.Size), MountedAt: d.Mountpoint, BlockSize: int(d.LogSec)}
			for _, c := range d.Children {
				if c.Type == "crypt" {
					e.Note = "opened on this host as " + c.Name
					if e.MountedAt == "" {
						e.MountedAt = c.Mountpoint
					}
				}
			}
			if probeDeadline(&e, path, open, d.FSType != "") {
				if e.Type == "" {
					e.Type = lsblkType(d.FSType)
					e.Label, e.UUID = d.Label, d.UUID
				}
				entries = append(entries, e)
			}
		}
		for _, c := range d.Children {
			if c.Type == "part" || c.Type == "loop" {
				walk(c)
			}
		}
	}
	for _, d := range out.BlockDevices {
		walk(d)
	}
	return entries, nil
}

func hasPartitions(d lsblkDevice) bool {
	for _, c := range d.Children {
		if c.Type == "part" {
			return true
		}
	}
	return false
}

// lsblkType maps blkid names to ours when the header could not be read.
func lsblkType(fstype string) string {
	switch fstype {
	case "crypto_LUKS":
		return "luks"
	case "":
		return "unknown"
	}
	return fstype
}

// FromDiskutil builds the list from diskutil's candidates, reading each
// header through the raw node (/dev/rdiskN), which is what luksmount opens.
func FromDiskutil(ctx context.Context, tool *diskutil.Tool, open Opener) ([]Entry, error) {
	l, err := tool.List(ctx)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, c := range l.Candidates() {
		e := Entry{Device: "/dev/" + c.DeviceIdentifier, Size: c.Size, MountedAt: c.MountPoint}
		// A Linux partition type, or an unpartitioned disk macOS cannot read
		// (how LUKS looks to it), is kept even when its header is unreadable;
		// any other partition only if its header is LUKS or ext.
		if probeDeadline(&e, "/dev/r"+c.DeviceIdentifier, open, c.Hinted) {
			if e.Type == "" {
				e.Type = darwinType(c.Content)
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func darwinType(content string) string {
	switch strings.ToUpper(content) {
	case diskutil.ContentLUKSGUID, strings.ToUpper(diskutil.ContentMBRLUKS):
		return "luks"
	case "":
		return "unknown"
	}
	return "linux"
}

// WriteJSON writes {"disks":[...]} with stable keys.
func WriteJSON(w io.Writer, entries []Entry) error {
	if entries == nil {
		entries = []Entry{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Disks  []Entry `json:"disks"`
		Groups []Group `json:"groups,omitempty"` // LVM groups and RAID arrays (stack.go)
	}{entries, Groups(entries)})
}

// WriteTable writes a human table.
func WriteTable(w io.Writer, entries []Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "No LUKS or ext drives found. Plug the drive in; on macOS run with sudo so the headers can be read.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSIZE\tTYPE\tLABEL\tUUID\tMOUNTED\tKDF MEMORY")
	for _, e := range entries {
		mem := "-"
		if e.KDFMemoryKiB > 0 {
			mem = HumanSize(int64(e.KDFMemoryKiB) << 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Device, HumanSize(e.Size), e.Type,
			dash(e.Label), dash(e.UUID), dash(e.MountedAt), mem)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", e.Device, e.Error)
		}
		if e.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", e.Device, e.Note)
		}
	}
	writeStackTable(w, entries)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// HumanSize formats bytes like lsblk: 1024-based, one decimal, "931.5G".
func HumanSize(n int64) string {
	const units = "BKMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + string(units[i])
}
