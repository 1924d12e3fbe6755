package supervisor

import (
	"runtime"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

// Unlocking runs at the KDF's own speed only when the VM has what the keyslot asks for: argon2
// fills its memory cost in parallel lanes, one thread each (cryptsetup runs as many threads as
// the keyslot has lanes, libargon2's threads), so fewer vCPUs than lanes serialise them and less
// RAM than the cost fails. pbkdf2 is one thread and no memory.

// KDFNeeds is the most a drive's active keyslots ask of the VM: argon2 memory (KiB) and lanes
// (0 and 0 when every slot is pbkdf2 or the header is nil). cryptsetup may try every slot, so
// each figure is the maximum over the slots.
func KDFNeeds(h *luksheader.Header) (memKiB, lanes int) {
	if h == nil {
		return 0, 0
	}
	for _, k := range h.ActiveKeyslots() {
		if k.KDF.Type == luksheader.KDFArgon2i || k.KDF.Type == luksheader.KDFArgon2id {
			memKiB, lanes = max(memKiB, k.KDF.MemoryKiB), max(lanes, k.KDF.CPUs)
		}
	}
	return memKiB, lanes
}

// CPUsForKDF is the vCPU count for unlocking with lanes argon2 lanes on a host with hostCPUs:
// one per lane, capped at the host's cores (more vCPUs than cores only adds contention); 1 for
// pbkdf2 (lanes 0).
func CPUsForKDF(lanes, hostCPUs int) int {
	return max(1, min(lanes, hostCPUs))
}

// SizeForUnlock is the VM (memory MiB, vCPUs) that unlocks h at its KDF's speed on this host.
func SizeForUnlock(h *luksheader.Header) (memMiB, cpus int) {
	memKiB, lanes := KDFNeeds(h)
	return qemu.MemoryForKDF((int64(memKiB) + 1023) / 1024), CPUsForKDF(lanes, runtime.NumCPU())
}

// kdfNeeds is what unlocking ids asks of the VM: the most key derivation memory (MiB, rounded
// up) and argon2 lanes of any LUKS keyslot among them (0, 0: none is LUKS, or every slot is
// pbkdf2). A session (its target and the LUKS volumes found inside it) and Check both size
// their VM from it.
func kdfNeeds(ids ...*luksheader.Identity) (mib int64, lanes int) {
	var kib int
	for _, id := range ids {
		if id == nil || !id.Kind.IsLUKS() {
			continue
		}
		k, l := KDFNeeds(id.LUKS)
		kib, lanes = max(kib, k), max(lanes, l)
	}
	return (int64(kib) + 1023) / 1024, lanes
}

// kdfNeeds is kdfNeeds of s's target and the LUKS volumes the host saw inside it, with the
// assumed memory when LUKS may hide inside LVM or RAID.
func (s *sup) kdfNeeds() (mib int64, lanes int) {
	ids := []*luksheader.Identity{s.id}
	if s.stack != nil {
		ids = append(ids, s.stack.luks...)
	}
	mib, lanes = kdfNeeds(ids...)
	if s.stack != nil && s.stack.hidden && mib == 0 {
		mib = hiddenKDFMiB
	}
	return mib, lanes
}
