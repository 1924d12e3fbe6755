package fssniff

import (
	"bytes"
	"testing"
)

func TestType(t *testing.T) {
	img := func(off int, magic string, bootSig bool) *bytes.Reader {
		b := make([]byte, 0x10100)
		copy(b[off:], magic)
		if bootSig {
			b[510], b[511] = 0x55, 0xAA
		}
		return bytes.NewReader(b)
	}
	for _, c := range []struct {
		r    *bytes.Reader
		want string
	}{
		{img(0, "XFSB", false), "xfs"}, {img(3, "EXFAT   ", true), "exfat"}, {img(3, "NTFS    ", true), "ntfs"},
		{img(0x36, "FAT12   ", true), "vfat"}, {img(0x36, "FAT16   ", true), "vfat"}, {img(0x52, "FAT32   ", true), "vfat"},
		{img(0x10040, "_BHRfS_M", false), "btrfs"},
		{img(0x36, "FAT16   ", false), ""}, // no boot signature: not FAT
		{img(0, "", true), ""},             // an MBR-like sector with nothing else
		{bytes.NewReader(make([]byte, 100)), ""},
	} {
		if got := Type(c.r); got != c.want {
			t.Errorf("Type = %q; want %q", got, c.want)
		}
	}
}
