package supervisor

import (
	"fmt"

	"github.com/luksmount/luksmount/pkg/luksheader"
)

// kdfNote describes the most expensive keyslot's key derivation, so a user watching the unlock
// knows what it costs and roughly how long to expect.
func kdfNote(h *luksheader.Header) string {
	if h == nil {
		return ""
	}
	var best *luksheader.KDF
	for _, k := range h.ActiveKeyslots() {
		kdf := k.KDF
		if best == nil || kdf.MemoryKiB > best.MemoryKiB || (kdf.MemoryKiB == best.MemoryKiB && kdf.Iterations > best.Iterations) {
			best = &kdf
		}
	}
	if best == nil {
		return ""
	}
	// cryptsetup benchmarks the KDF when a keyslot is made so that it takes --iter-time (2 s by
	// default) on that computer; an emulated VM (TCG) is several times slower.
	const expect = "cryptsetup sized it for about 2 s on the computer that made the keyslot (its default), longer without hardware acceleration"
	switch best.Type {
	case luksheader.KDFPBKDF2:
		return fmt.Sprintf("key derivation is pbkdf2-%s with %d iterations; %s", best.Hash, best.Iterations, expect)
	default:
		return fmt.Sprintf("key derivation is %s with %s of memory, %d passes, %d lanes; %s", best.Type, mib(best.MemoryKiB), best.Time, best.CPUs, expect)
	}
}

func mib(kib int) string {
	if kib >= 1<<20 {
		return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
	}
	return fmt.Sprintf("%d MiB", kib>>10)
}
