package disks

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/luksmount/luksmount/pkg/fssniff"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/stackprobe"
)

// What `list` shows below the filesystem: partition tables (inside image files too), LVM physical
// volumes grouped into their volume groups, RAID members grouped into arrays, BitLocker. Every
// device is probed under a deadline, so a drive that does not answer cannot hang the list.

// ProbeTimeout bounds reading one device's headers.
var ProbeTimeout = 3 * time.Second

// Partition is one partition of a partition table, as `--volume pN` names it.
type Partition struct {
	Volume       string `json:"volume"` // p1, p2, ...: what --volume takes
	Start        int64  `json:"start"`
	Size         int64  `json:"size"`
	Type         string `json:"type"` // luks1, luks2, ext4, ... or unknown
	Label        string `json:"label,omitempty"`
	KDFMemoryKiB int    `json:"kdf_memory_kib,omitempty"`
	Name         string `json:"name,omitempty"` // the GPT partition name
}

// Group is an LVM volume group or a RAID array, with the listed devices that belong to it.
type Group struct {
	Kind     string   `json:"kind"` // lvm or raid
	Name     string   `json:"name"`
	UUID     string   `json:"uuid"`
	Level    string   `json:"level,omitempty"`   // raid
	Volumes  []string `json:"volumes,omitempty"` // lvm: vg/lv, what --volume takes
	Members  []string `json:"members"`
	Devices  int      `json:"devices"`  // members when complete
	Complete bool     `json:"complete"` // every member is listed
	// Target is what to pass to luksmount: every member joined with "+".
	Target string `json:"target"`
}

// probeStack fills e from the container r holds (size bytes); false if none is recognised.
func probeStack(e *Entry, r io.ReaderAt, size int64) bool {
	l, err := stackprobe.Probe(r, size)
	if err != nil {
		e.Error = fmt.Sprintf("cannot read header: %v", err)
		return false
	}
	switch l.Kind {
	case stackprobe.BitLocker:
		e.Type = "bitlocker"
	case stackprobe.LVM2:
		e.Type, e.UUID, e.lvm = "lvm2-pv", l.PV.UUID, l.PV
	case stackprobe.MD:
		e.Type, e.UUID, e.raid = "raid-member", l.RAID.UUID, l.RAID
	case stackprobe.GPT, stackprobe.MBR:
		e.Type = string(l.Kind)
		for _, p := range l.Partitions {
			pe := Partition{Volume: fmt.Sprintf("p%d", p.Number), Start: p.Start, Size: p.Size, Name: p.Name, Type: "unknown"}
			sr := io.NewSectionReader(r, p.Start, p.Size)
			if id, err := luksheader.Identify(sr); err == nil {
				switch {
				case id.Kind.IsLUKS() && id.LUKS != nil:
					pe.Type, pe.Label, pe.KDFMemoryKiB = id.Kind.String(), id.Label, id.LUKS.MaxKDFMemoryKiB()
				case id.Kind != luksheader.KindUnknown:
					pe.Type, pe.Label = id.Kind.String(), id.Label
				default:
					if sl, err := stackprobe.Probe(sr, p.Size); err == nil && sl.Kind != stackprobe.None {
						pe.Type = string(sl.Kind)
					} else if t := fssniff.Type(sr); t != "" {
						pe.Type = t
					}
				}
			}
			e.Partitions = append(e.Partitions, pe)
		}
	default:
		if t := fssniff.Type(r); t != "" {
			e.Type = t // a plain btrfs, xfs, exFAT, FAT or NTFS
			return true
		}
		return false
	}
	return true
}

// probeDeadline is probe under ProbeTimeout: a device that hangs is listed with that error.
func probeDeadline(e *Entry, path string, open Opener, hinted bool) bool {
	type res struct {
		e  Entry
		ok bool
	}
	ch := make(chan res, 1)
	go func() {
		c := *e
		ok := probe(&c, path, open, hinted)
		ch <- res{c, ok}
	}()
	select {
	case r := <-ch:
		*e = r.e
		return r.ok
	case <-time.After(ProbeTimeout):
		e.Error = fmt.Sprintf("no answer within %s: the drive may be failing or busy", ProbeTimeout)
		return true
	}
}

// ListPaths probes the given devices or image files (any kind, including unrecognised ones).
func ListPaths(ctx context.Context, paths []string) ([]Entry, error) {
	var entries []Entry
	for _, p := range paths {
		e := Entry{Device: p}
		if fi, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("cannot list %s: %w", p, err)
		} else if fi.Mode().IsRegular() {
			e.Size = fi.Size()
		}
		if !probeDeadline(&e, p, OpenDevice, true) && e.Type == "" {
			e.Type = "unknown"
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// Groups gathers LVM physical volumes into volume groups and RAID members into arrays.
func Groups(entries []Entry) []Group {
	by := map[string]*Group{}
	var order []string
	for _, e := range entries {
		var key string
		var g Group
		switch {
		case e.lvm != nil && e.lvm.VGUUID != "":
			key = "lvm:" + e.lvm.VGUUID
			g = Group{Kind: "lvm", Name: e.lvm.VG, UUID: e.lvm.VGUUID, Devices: e.lvm.Devices}
			for _, lv := range e.lvm.LVs {
				g.Volumes = append(g.Volumes, e.lvm.VG+"/"+lv.Name)
			}
		case e.raid != nil:
			key = "raid:" + e.raid.UUID
			g = Group{Kind: "raid", Name: e.raid.Name, UUID: e.raid.UUID, Level: e.raid.Level, Devices: e.raid.Devices}
		default:
			continue
		}
		if by[key] == nil {
			by[key] = &g
			order = append(order, key)
		}
		by[key].Members = append(by[key].Members, e.Device)
	}
	var out []Group
	for _, k := range order {
		g := by[k]
		sort.Strings(g.Members)
		g.Complete = len(g.Members) >= g.Devices
		for i, m := range g.Members {
			if i > 0 {
				g.Target += "+"
			}
			g.Target += m
		}
		out = append(out, *g)
	}
	return out
}

// stackFSType are lsblk FSTYPEs of containers luksmount opens (besides LUKS and ext).
var stackFSType = map[string]bool{"LVM2_member": true, "linux_raid_member": true, "BitLocker": true}

// writeStackTable adds partitions and groups under WriteTable's device table.
func writeStackTable(w io.Writer, entries []Entry) {
	for _, e := range entries {
		for _, p := range e.Partitions {
			fmt.Fprintf(w, "%s: partition %s, %s, %s%s\n", e.Device, p.Volume, HumanSize(p.Size), p.Type, labelNote(p.Label))
		}
	}
	for _, g := range Groups(entries) {
		state := "complete"
		if !g.Complete {
			state = fmt.Sprintf("%d of %d members listed", len(g.Members), g.Devices)
		}
		what := "LVM volume group " + g.Name
		if g.Kind == "raid" {
			what = fmt.Sprintf("RAID array %s (%s)", g.Name, g.Level)
		}
		fmt.Fprintf(w, "%s, %s: luksmount %s", what, state, g.Target)
		if len(g.Volumes) > 1 {
			fmt.Fprintf(w, " --volume %s (volumes: %v)", g.Volumes[0], g.Volumes)
		}
		fmt.Fprintln(w)
	}
}

func labelNote(l string) string {
	if l == "" {
		return ""
	}
	return fmt.Sprintf(" %q", l)
}
