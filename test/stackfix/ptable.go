package stackfix

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"unicode/utf16"
)

// Part is a partition to create: SizeMiB (0 = the rest of the disk), a GPT name.
type Part struct {
	SizeMiB int64
	Name    string
}

var le = binary.LittleEndian

// linuxFS is the GPT type GUID for Linux filesystem data, in its on-disk byte order.
var linuxFS = []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}

// WriteGPT creates path (sizeMiB, sparse) with a protective MBR and primary and backup GPT
// holding parts, 1 MiB aligned, 512-byte sectors (UEFI 2.10 §5.3).
func WriteGPT(path string, sizeMiB int64, parts []Part) error {
	f, err := create(path, sizeMiB)
	if err != nil {
		return err
	}
	defer f.Close()
	sectors := sizeMiB << 11
	last := sectors - 34 // the last usable LBA: backup entries (32 sectors) and header follow
	entries := make([]byte, 128*128)
	start := int64(2048)
	for i, p := range parts {
		end := last
		if p.SizeMiB > 0 {
			end = start + p.SizeMiB<<11 - 1
		}
		e := entries[i*128:]
		copy(e[0:16], linuxFS)
		copy(e[16:32], []byte{byte(i + 1), 0x5a, 0xc1, 0x7e, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		le.PutUint64(e[32:], uint64(start))
		le.PutUint64(e[40:], uint64(end))
		for j, c := range utf16.Encode([]rune(p.Name)) {
			if j < 36 {
				le.PutUint16(e[56+2*j:], c)
			}
		}
		start = end + 1
	}
	ecrc := crc32.ChecksumIEEE(entries)
	header := func(self, other, entryLBA int64) []byte {
		h := make([]byte, 512)
		copy(h, "EFI PART")
		le.PutUint32(h[8:], 0x00010000)
		le.PutUint32(h[12:], 92)
		le.PutUint64(h[24:], uint64(self))
		le.PutUint64(h[32:], uint64(other))
		le.PutUint64(h[40:], 34)
		le.PutUint64(h[48:], uint64(last))
		copy(h[56:72], []byte{0x6c, 0x75, 0x6b, 0x73, 0x6d, 0x6f, 0x75, 0x6e, 0x74, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x01})
		le.PutUint64(h[72:], uint64(entryLBA))
		le.PutUint32(h[80:], 128)
		le.PutUint32(h[84:], 128)
		le.PutUint32(h[88:], ecrc)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	mbr := make([]byte, 512)
	e := mbr[446:]
	e[4] = 0xEE
	le.PutUint32(e[8:], 1)
	n := sectors - 1
	if n > 0xffffffff {
		n = 0xffffffff
	}
	le.PutUint32(e[12:], uint32(n))
	mbr[510], mbr[511] = 0x55, 0xAA
	for _, w := range []struct {
		b   []byte
		lba int64
	}{
		{mbr, 0}, {header(1, sectors-1, 2), 1}, {entries, 2},
		{entries, sectors - 33}, {header(sectors-1, 1, sectors-33), sectors - 1},
	} {
		if _, err := f.WriteAt(w.b, w.lba*512); err != nil {
			return err
		}
	}
	return f.Sync()
}

// WriteMBR creates path (sizeMiB, sparse) with a DOS partition table of up to four primary
// Linux (0x83) partitions, 1 MiB aligned.
func WriteMBR(path string, sizeMiB int64, parts []Part) error {
	f, err := create(path, sizeMiB)
	if err != nil {
		return err
	}
	defer f.Close()
	mbr := make([]byte, 512)
	le.PutUint32(mbr[440:], 0x6c6d7374) // disk signature
	start := int64(2048)
	for i, p := range parts {
		n := sizeMiB<<11 - start
		if p.SizeMiB > 0 {
			n = p.SizeMiB << 11
		}
		e := mbr[446+16*i:]
		e[4] = 0x83
		le.PutUint32(e[8:], uint32(start))
		le.PutUint32(e[12:], uint32(n))
		start += n
	}
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return err
	}
	return f.Sync()
}

func create(path string, sizeMiB int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Sparse creates path as an empty sparse file of sizeMiB.
func Sparse(path string, sizeMiB int64) error {
	f, err := create(path, sizeMiB)
	if err != nil {
		return err
	}
	return f.Close()
}
