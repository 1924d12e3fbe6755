package supervisor

import (
	"testing"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

func TestKDFNeedsAndCPUs(t *testing.T) {
	slot := func(active bool, typ string, mem, lanes int) luksheader.Keyslot {
		return luksheader.Keyslot{Active: active, KDF: luksheader.KDF{Type: typ, MemoryKiB: mem, CPUs: lanes}}
	}
	h := &luksheader.Header{Version: 2, Keyslots: []luksheader.Keyslot{
		slot(true, luksheader.KDFArgon2id, 65536, 2),
		slot(true, luksheader.KDFArgon2i, 1048576, 4),
		slot(false, luksheader.KDFArgon2id, 4194304, 8), // inactive: ignored
		slot(true, luksheader.KDFPBKDF2, 0, 0),
	}}
	if mem, lanes := KDFNeeds(h); mem != 1048576 || lanes != 4 {
		t.Errorf("KDFNeeds = %d KiB, %d lanes; want 1048576, 4", mem, lanes)
	}
	if mem, lanes := KDFNeeds(&luksheader.Header{Version: 1, Keyslots: []luksheader.Keyslot{slot(true, luksheader.KDFPBKDF2, 0, 0)}}); mem != 0 || lanes != 0 {
		t.Errorf("pbkdf2 only: %d, %d", mem, lanes)
	}
	if mem, lanes := KDFNeeds(nil); mem != 0 || lanes != 0 {
		t.Errorf("nil header: %d, %d", mem, lanes)
	}
	for _, c := range []struct{ lanes, host, want int }{
		{4, 8, 4}, {4, 2, 2}, {1, 8, 1}, {0, 8, 1}, {8, 1, 1},
	} {
		if got := CPUsForKDF(c.lanes, c.host); got != c.want {
			t.Errorf("CPUsForKDF(%d lanes, %d cores) = %d, want %d", c.lanes, c.host, got, c.want)
		}
	}
	mem, cpus := SizeForUnlock(h)
	if mem != qemu.MemoryForKDF(1024) || cpus < 1 || cpus > 4 {
		t.Errorf("SizeForUnlock = %d MiB, %d vCPUs", mem, cpus)
	}
}
