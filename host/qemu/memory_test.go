package qemu

import "testing"

func TestMemoryForFormatLeavesTwiceTheKDF(t *testing.T) {
	for _, kdf := range []int64{32, 256, 1024} {
		if m := MemoryForFormat(kdf); int64(m) < 2*kdf+64 {
			t.Errorf("MemoryForFormat(%d) = %d; cryptsetup would cap the keyslot below %d MiB", kdf, m, kdf)
		}
	}
	if m := MemoryForFormat(0); m != PlainMemoryMiB {
		t.Errorf("MemoryForFormat(0) = %d; want %d", m, PlainMemoryMiB)
	}
}
