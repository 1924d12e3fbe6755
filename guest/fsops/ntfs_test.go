package fsops

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fakeNTFS is a boot sector and record 3 in $MFT (cluster 4) and $MFTMirr (cluster 2), with
// the update sequence applied as Windows writes it.
func fakeNTFS(flags uint16) []byte {
	le := binary.LittleEndian
	img := make([]byte, 64<<10)
	copy(img[3:], "NTFS    ")
	le.PutUint16(img[0x0B:], 512)
	img[0x0D] = 8 // 4 KiB clusters
	le.PutUint64(img[0x30:], 4)
	le.PutUint64(img[0x38:], 2)
	img[0x40] = 0xF6 // 2^10: 1 KiB records
	rec := make([]byte, 1024)
	copy(rec, "FILE")
	le.PutUint16(rec[4:], 0x30)
	le.PutUint16(rec[6:], 3)
	le.PutUint16(rec[0x14:], 0x38)
	a := 0x38
	le.PutUint32(rec[a:], 0x10) // $STANDARD_INFORMATION
	le.PutUint32(rec[a+4:], 0x60)
	a += 0x60
	le.PutUint32(rec[a:], 0x70)
	le.PutUint32(rec[a+4:], 0x28)
	le.PutUint32(rec[a+0x10:], 12)
	le.PutUint16(rec[a+0x14:], 0x18)
	rec[a+0x18+8] = 3
	le.PutUint16(rec[a+0x18+0x0A:], flags)
	le.PutUint32(rec[a+0x28:], 0xFFFFFFFF)
	usn := []byte{0x42, 0x00}
	copy(rec[0x30:], usn)
	for i := 1; i < 3; i++ {
		end := i*512 - 2
		copy(rec[0x30+2*i:], rec[end:end+2])
		copy(rec[end:], usn)
	}
	copy(img[4*4096+3*1024:], rec)
	copy(img[2*4096+3*1024:], rec)
	return img
}

func TestReadNTFSVolumeInfo(t *testing.T) {
	for _, flags := range []uint16{0, NTFSVolumeDirty, 0x8000 | NTFSVolumeDirty} {
		img := fakeNTFS(flags)
		v, err := ReadNTFSVolumeInfo(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		if v.Flags != flags {
			t.Fatalf("flags %#x; want %#x", v.Flags, flags)
		}
		// The offsets point at the field in both copies.
		for _, at := range v.FlagsAt {
			if at == 0 || binary.LittleEndian.Uint16(img[at:]) != flags {
				t.Fatalf("FlagsAt %v do not point at the flags", v.FlagsAt)
			}
		}
	}
	img := fakeNTFS(0)
	copy(img[3:], "EXFAT   ")
	if _, err := ReadNTFSVolumeInfo(bytes.NewReader(img)); err == nil {
		t.Fatal("a non-NTFS boot sector was read as NTFS")
	}
	img = fakeNTFS(0)
	copy(img[4*4096+3*1024:], "BAAD")
	if _, err := ReadNTFSVolumeInfo(bytes.NewReader(img)); err == nil {
		t.Fatal("a damaged $Volume record was read")
	}
}
