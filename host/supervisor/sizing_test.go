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

// kdfNeeds: the most over a target and the LUKS volumes inside it, MiB rounded up; a session and
// Check use it alike, and a stack that may hide LUKS assumes hiddenKDFMiB.
func TestKDFNeedsOverIdentities(t *testing.T) {
	luks := func(mem, lanes int) *luksheader.Identity {
		return &luksheader.Identity{Kind: luksheader.KindLUKS2, LUKS: &luksheader.Header{Version: 2, Keyslots: []luksheader.Keyslot{
			{Active: true, KDF: luksheader.KDF{Type: luksheader.KDFArgon2id, MemoryKiB: mem, CPUs: lanes}}}}}
	}
	ext4 := &luksheader.Identity{Kind: luksheader.KindExt4}
	for _, c := range []struct {
		ids   []*luksheader.Identity
		mib   int64
		lanes int
		what  string
	}{
		{nil, 0, 0, "nothing"},
		{[]*luksheader.Identity{ext4, nil}, 0, 0, "not encrypted"},
		{[]*luksheader.Identity{luks(65537, 2)}, 65, 2, "rounded up"},
		{[]*luksheader.Identity{ext4, luks(32768, 4), luks(262144, 1)}, 256, 4, "most of each"},
		{[]*luksheader.Identity{{Kind: luksheader.KindLUKS1}}, 0, 0, "LUKS without a parsed header"},
	} {
		if mib, lanes := kdfNeeds(c.ids...); mib != c.mib || lanes != c.lanes {
			t.Errorf("%s: kdfNeeds = %d MiB, %d lanes; want %d, %d", c.what, mib, lanes, c.mib, c.lanes)
		}
	}
	s := &sup{id: ext4, stack: &stackInfo{hidden: true}}
	if mib, _ := s.kdfNeeds(); mib != hiddenKDFMiB {
		t.Errorf("LVM that may hide LUKS: %d MiB, want %d", mib, hiddenKDFMiB)
	}
	s = &sup{id: luks(1024, 1), stack: &stackInfo{luks: []*luksheader.Identity{luks(524288, 4)}}}
	if mib, lanes := s.kdfNeeds(); mib != 512 || lanes != 4 {
		t.Errorf("stack: %d MiB, %d lanes; want 512, 4", mib, lanes)
	}
}
