// Package stackprobe recognises, from a few sectors read on the host, the containers a drive may
// hold below its filesystems: a GPT or MBR partition table, an LVM2 physical volume, an mdadm RAID
// member and BitLocker. It never writes and reads at most a few KiB per structure, so `list` and
// the pre-boot check stay fast on any layout. Formats are the documented on-disk ones: UEFI 2.10
// §5.3 (GPT), the IBM PC MBR, LVM2's label and metadata area (lib/format_text/layout.h), the md
// v0.90/v1.x superblocks (include/uapi/linux/raid/md_p.h) and BitLocker's "-FVE-FS-" boot sector.
package stackprobe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Kind is the container found at the start (or end) of a device.
type Kind string

// Kinds.
const (
	None      Kind = ""
	GPT       Kind = "gpt"
	MBR       Kind = "mbr"
	LVM2      Kind = "LVM2_member"       // blkid's names, which the guest also sees
	MD        Kind = "linux_raid_member" // mdadm RAID member
	BitLocker Kind = "BitLocker"
)

// Partition is one entry of a partition table.
type Partition struct {
	Number int    `json:"number"` // 1-based, as Linux numbers them (sda1, vda2)
	Start  int64  `json:"start"`  // bytes
	Size   int64  `json:"size"`   // bytes
	Type   string `json:"type"`   // GPT type GUID or MBR type byte (0x83)
	Name   string `json:"name,omitempty"`
}

// RAID is an md member's superblock.
type RAID struct {
	UUID    string `json:"uuid"`
	Name    string `json:"name,omitempty"`
	Level   string `json:"level"` // raid0, raid1, raid5, raid6, raid10, linear
	Devices int    `json:"devices"`
}

// PV is an LVM2 physical volume's label and the volume group its metadata names.
type PV struct {
	UUID    string `json:"uuid"`
	VG      string `json:"vg,omitempty"`
	VGUUID  string `json:"vg_uuid,omitempty"`
	LVs     []LV   `json:"lvs,omitempty"` // from the metadata text
	Devices int    `json:"devices,omitempty"`
}

// LV is a logical volume named in a PV's metadata.
type LV struct {
	Name string `json:"name"`
}

// Layout is what Probe found.
type Layout struct {
	Kind       Kind        `json:"kind"`
	Partitions []Partition `json:"partitions,omitempty"`
	RAID       *RAID       `json:"raid,omitempty"`
	PV         *PV         `json:"pv,omitempty"`
}

// Probe looks for a container on r (size bytes). Nothing recognised is Kind None, not an error;
// errors are I/O failures.
func Probe(r io.ReaderAt, size int64) (*Layout, error) {
	head := make([]byte, 8192)
	n, err := r.ReadAt(head, 0)
	if n < 1024 {
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			return &Layout{}, nil
		}
		return nil, err
	}
	head = head[:n]
	if bytes.Equal(head[3:11], []byte("-FVE-FS-")) {
		return &Layout{Kind: BitLocker}, nil
	}
	if pv := parsePV(r, head); pv != nil {
		return &Layout{Kind: LVM2, PV: pv}, nil
	}
	if md := mdAt(head, 4096); md != nil { // v1.2
		return &Layout{Kind: MD, RAID: md}, nil
	}
	if md := mdAt(head, 0); md != nil { // v1.1
		return &Layout{Kind: MD, RAID: md}, nil
	}
	if md := mdAtEnd(r, size); md != nil { // v1.0, v0.90
		return &Layout{Kind: MD, RAID: md}, nil
	}
	for _, sector := range []int64{512, 4096} {
		if parts, ok := parseGPT(r, sector); ok {
			return &Layout{Kind: GPT, Partitions: parts}, nil
		}
	}
	if parts, ok := parseMBR(head); ok {
		return &Layout{Kind: MBR, Partitions: parts}, nil
	}
	return &Layout{}, nil
}

var le = binary.LittleEndian

func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:4]), le.Uint16(b[4:6]), le.Uint16(b[6:8]), b[8:10], b[10:16])
}

func parseGPT(r io.ReaderAt, sector int64) ([]Partition, bool) {
	h := make([]byte, 92)
	if _, err := r.ReadAt(h, sector); err != nil || string(h[0:8]) != "EFI PART" {
		return nil, false
	}
	lba, count, esize := int64(le.Uint64(h[72:80])), int64(le.Uint32(h[80:84])), int64(le.Uint32(h[84:88]))
	if esize < 128 || esize > 4096 || count <= 0 || count > 1024 {
		return nil, false
	}
	buf := make([]byte, count*esize)
	if _, err := r.ReadAt(buf, lba*sector); err != nil {
		return nil, false
	}
	var parts []Partition
	for i := int64(0); i < count; i++ {
		e := buf[i*esize : (i+1)*esize]
		if bytes.Equal(e[0:16], make([]byte, 16)) {
			continue
		}
		first, last := int64(le.Uint64(e[32:40])), int64(le.Uint64(e[40:48]))
		if last < first {
			continue
		}
		parts = append(parts, Partition{Number: int(i) + 1, Start: first * sector, Size: (last - first + 1) * sector,
			Type: guid(e[0:16]), Name: utf16Name(e[56:128])})
	}
	return parts, true
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := le.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// parseMBR reads the four primary entries. A FAT, exFAT or NTFS boot sector also ends in 55 AA:
// those are filesystems, not tables.
func parseMBR(b []byte) ([]Partition, bool) {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xAA {
		return nil, false
	}
	if (b[0] == 0xEB || b[0] == 0xE9) && (string(b[3:7]) == "NTFS" || string(b[3:8]) == "EXFAT" ||
		string(b[54:57]) == "FAT" || string(b[82:85]) == "FAT" || string(b[3:11]) == "-FVE-FS-") {
		return nil, false
	}
	var parts []Partition
	for i := 0; i < 4; i++ {
		e := b[446+16*i : 446+16*(i+1)]
		if e[0] != 0 && e[0] != 0x80 {
			return nil, false
		}
		typ, start, n := e[4], int64(le.Uint32(e[8:12])), int64(le.Uint32(e[12:16]))
		if typ == 0 || n == 0 {
			continue
		}
		if typ == 0xEE {
			return nil, false // protective MBR: the GPT header was unreadable
		}
		parts = append(parts, Partition{Number: i + 1, Start: start * 512, Size: n * 512, Type: fmt.Sprintf("0x%02x", typ)})
	}
	return parts, len(parts) > 0
}

const mdMagic = 0xa92b4efc

var mdLevels = map[int32]string{-1: "linear", 0: "raid0", 1: "raid1", 4: "raid4", 5: "raid5", 6: "raid6", 10: "raid10"}

func mdLevel(l int32) string {
	if s, ok := mdLevels[l]; ok {
		return s
	}
	return fmt.Sprintf("level %d", l)
}

// mdAt parses a v1.x superblock at off in b.
func mdAt(b []byte, off int) *RAID {
	if len(b) < off+100 || le.Uint32(b[off:]) != mdMagic || le.Uint32(b[off+4:]) != 1 {
		return nil
	}
	s := b[off:]
	return &RAID{UUID: mdUUID(s[16:32]), Name: strings.TrimRight(string(s[32:64]), "\x00"),
		Level: mdLevel(int32(le.Uint32(s[72:76]))), Devices: int(le.Uint32(s[92:96]))}
}

// mdUUID prints a set UUID the way mdadm does (8:8:8:8 hex).
func mdUUID(b []byte) string {
	return fmt.Sprintf("%x:%x:%x:%x", b[0:4], b[4:8], b[8:12], b[12:16])
}

// mdAtEnd looks for v1.0 (8 KiB from the end, 4 KiB aligned) and v0.90 (the last 64 KiB-aligned
// 64 KiB) superblocks.
func mdAtEnd(r io.ReaderAt, size int64) *RAID {
	if size < 128<<10 {
		return nil
	}
	b := make([]byte, 4096)
	if off := (size - 8192) &^ 4095; off > 0 {
		if _, err := r.ReadAt(b, off); err == nil {
			if md := mdAt(b, 0); md != nil {
				return md
			}
		}
	}
	off := (size &^ (64<<10 - 1)) - 64<<10
	if _, err := r.ReadAt(b, off); err != nil || le.Uint32(b) != mdMagic || le.Uint32(b[4:]) != 0 {
		return nil
	}
	u := make([]byte, 0, 16)
	for _, o := range []int{20, 52, 56, 60} {
		u = append(u, b[o:o+4]...)
	}
	return &RAID{UUID: mdUUID(u), Level: mdLevel(int32(le.Uint32(b[28:]))), Devices: int(le.Uint32(b[40:]))}
}

// parsePV finds an LVM2 label in the first four sectors and reads the VG name from the first
// metadata area's current text.
func parsePV(r io.ReaderAt, head []byte) *PV {
	for s := 0; s < 4 && (s+1)*512 <= len(head); s++ {
		l := head[s*512 : (s+1)*512]
		if string(l[0:8]) != "LABELONE" || string(l[24:32]) != "LVM2 001" {
			continue
		}
		off := int(le.Uint32(l[20:24]))
		if off < 32 || off+40 > 512 {
			return nil
		}
		ph := l[off:]
		pv := &PV{UUID: lvmUUID(ph[0:32])}
		// disk_locn lists: data areas, a zero entry, then metadata areas.
		p, list := 40, 0
		for p+16 <= len(ph) {
			o, n := int64(le.Uint64(ph[p:])), int64(le.Uint64(ph[p+8:]))
			p += 16
			if o == 0 && n == 0 {
				list++
				if list == 2 {
					break
				}
				continue
			}
			if list == 1 {
				readVG(r, o, pv)
				break
			}
		}
		return pv
	}
	return nil
}

func lvmUUID(b []byte) string {
	s := string(b)
	if len(s) != 32 {
		return s
	}
	return s[0:6] + "-" + s[6:10] + "-" + s[10:14] + "-" + s[14:18] + "-" + s[18:22] + "-" + s[22:26] + "-" + s[26:32]
}

// readVG reads the metadata text at the mda header at off: "vgname {\nid = \"...\"\n...".
func readVG(r io.ReaderAt, off int64, pv *PV) {
	h := make([]byte, 512)
	if _, err := r.ReadAt(h, off); err != nil || string(h[4:20]) != " LVM2 x[5A%r0N*>" {
		return
	}
	start := int64(le.Uint64(h[24:32]))
	loc, n := int64(le.Uint64(h[40:48])), int64(le.Uint64(h[48:56]))
	if n <= 0 || n > 1<<20 || start != off {
		return
	}
	text := make([]byte, n)
	if _, err := r.ReadAt(text, off+loc); err != nil {
		return
	}
	parseVGText(string(text), pv)
}

// parseVGText reads the VG name, id, its PV count and LV names from LVM2 metadata text.
func parseVGText(t string, pv *PV) {
	lines := strings.Split(t, "\n")
	depth, section := 0, []string{}
	for _, raw := range lines {
		l := strings.TrimSpace(raw)
		switch {
		case strings.HasSuffix(l, "{"):
			name := strings.TrimSpace(strings.TrimSuffix(l, "{"))
			if depth == 0 && pv.VG == "" {
				pv.VG = name
			}
			if depth == 2 && len(section) > 1 && section[1] == "physical_volumes" {
				pv.Devices++
			}
			if depth == 2 && len(section) > 1 && section[1] == "logical_volumes" {
				pv.LVs = append(pv.LVs, LV{Name: name})
			}
			section = append(section, name)
			depth++
		case l == "}":
			if depth > 0 {
				depth--
				section = section[:len(section)-1]
			}
		case depth == 1 && strings.HasPrefix(l, "id = "):
			pv.VGUUID = strings.Trim(strings.TrimPrefix(l, "id = "), `"`)
		}
	}
}
