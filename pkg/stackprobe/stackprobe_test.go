package stackprobe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/test/stackfix"
)

func probeFile(t *testing.T, path string) *Layout {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	l, err := Probe(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPartitionTables(t *testing.T) {
	dir := t.TempDir()
	gpt, mbr := filepath.Join(dir, "gpt.img"), filepath.Join(dir, "mbr.img")
	if err := stackfix.WriteGPT(gpt, 64, []stackfix.Part{{SizeMiB: 16, Name: "boot"}, {Name: "data"}}); err != nil {
		t.Fatal(err)
	}
	if err := stackfix.WriteMBR(mbr, 48, []stackfix.Part{{SizeMiB: 16}, {}}); err != nil {
		t.Fatal(err)
	}
	l := probeFile(t, gpt)
	if l.Kind != GPT || len(l.Partitions) != 2 || l.Partitions[0].Start != 1<<20 || l.Partitions[0].Size != 16<<20 ||
		l.Partitions[1].Name != "data" || l.Partitions[1].Number != 2 || l.Partitions[1].Start+l.Partitions[1].Size > 64<<20 {
		t.Fatalf("GPT = %+v", l)
	}
	l = probeFile(t, mbr)
	if l.Kind != MBR || len(l.Partitions) != 2 || l.Partitions[1].Start != 17<<20 || l.Partitions[1].Size != 31<<20 || l.Partitions[0].Type != "0x83" {
		t.Fatalf("MBR = %+v", l)
	}
	// A corrupt GPT header falls back to the protective MBR, which is not a table of its own.
	f, _ := os.OpenFile(gpt, os.O_RDWR, 0)
	f.WriteAt([]byte("XXXXXXXX"), 512)
	f.Close()
	if l := probeFile(t, gpt); l.Kind != None {
		t.Fatalf("damaged GPT = %+v; want nothing", l)
	}
}

func TestSignatures(t *testing.T) {
	b := make([]byte, 1<<20)
	copy(b[3:], "-FVE-FS-")
	b[510], b[511] = 0x55, 0xAA
	if l, _ := Probe(bytesReader(b), int64(len(b))); l.Kind != BitLocker {
		t.Fatalf("BitLocker = %+v", l)
	}
	// A FAT boot sector ends in 55 AA too: not a partition table.
	fat := make([]byte, 1<<20)
	fat[0], fat[1], fat[2] = 0xEB, 0x3C, 0x90
	copy(fat[54:], "FAT16   ")
	fat[510], fat[511] = 0x55, 0xAA
	if l, _ := Probe(bytesReader(fat), int64(len(fat))); l.Kind != None {
		t.Fatalf("FAT = %+v", l)
	}
	md := make([]byte, 1<<20)
	le.PutUint32(md[4096:], mdMagic)
	le.PutUint32(md[4100:], 1)
	copy(md[4096+16:], []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	copy(md[4096+32:], "host:data")
	le.PutUint32(md[4096+72:], 5)
	le.PutUint32(md[4096+92:], 3)
	l, _ := Probe(bytesReader(md), int64(len(md)))
	if l.Kind != MD || l.RAID.Level != "raid5" || l.RAID.Devices != 3 || l.RAID.Name != "host:data" || l.RAID.UUID != "01020304:05060708:090a0b0c:0d0e0f10" {
		t.Fatalf("md = %+v %+v", l, l.RAID)
	}
}

func TestVGText(t *testing.T) {
	var pv PV
	parseVGText(`vg0 {
id = "abc-def"
seqno = 3
physical_volumes {
pv0 {
id = "x"
}
pv1 {
id = "y"
}
}
logical_volumes {
root {
id = "r"
}
home {
id = "h"
}
}
}
`, &pv)
	if pv.VG != "vg0" || pv.VGUUID != "abc-def" || pv.Devices != 2 || len(pv.LVs) != 2 || pv.LVs[1].Name != "home" {
		t.Fatalf("parseVGText = %+v", pv)
	}
}

type bytesReader []byte

func (b bytesReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, os.ErrClosed
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, os.ErrClosed
	}
	return n, nil
}
