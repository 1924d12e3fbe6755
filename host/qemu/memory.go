package qemu

// Guest memory sizing. The guest has no swap and the initramfs lives in RAM, so the VM needs the
// kernel + initramfs + agent + cryptsetup baseline plus whatever the LUKS keyslot's KDF asks for
// (argon2 memory cost; pbkdf2 needs none).
const (
	// PlainMemoryMiB is enough for an unencrypted filesystem: kernel, the unpacked initramfs,
	// the agent, the NFS server and page cache for its I/O.
	PlainMemoryMiB = 256
	// MinMemoryMiB is the least --memory accepted: with 128 MiB the agent image (40 MiB unpacked
	// since the filesystem and LVM/RAID tools, 2026-12) unpacks only in part (measured, TCG).
	MinMemoryMiB = 192
	// kdfMarginMiB is what the VM needs besides the KDF's own buffer for an unlock to succeed.
	// Measured (amd64 cloud kernel + agent initramfs, TCG, 2026-11): with -m 160 the guest reports
	// MemTotal 121 MiB and MemAvailable 78 MiB after boot (so ~82 MiB goes to the kernel, the
	// unpacked initramfs and the agent) and a 64 MiB argon2id keyslot unlocks; with -m 128
	// (MemAvailable 49 MiB) it fails. 192 keeps ~100 MiB of headroom over that floor for the
	// kernel's per-page overhead at larger sizes (~1.6% of RAM) and cryptsetup itself.
	kdfMarginMiB = 192
)

// MemoryForKDF is the guest RAM in MiB for a drive whose most expensive keyslot needs kdfMiB
// (0 = no KDF memory: unencrypted, or pbkdf2), rounded up to 64 MiB.
func MemoryForKDF(kdfMiB int64) int {
	if kdfMiB <= 0 {
		return PlainMemoryMiB
	}
	m := kdfMiB + kdfMarginMiB
	m = (m + 63) / 64 * 64
	if m < PlainMemoryMiB {
		m = PlainMemoryMiB
	}
	return int(m)
}

// MemoryForFormat is the guest RAM in MiB to create a keyslot costing kdfMiB. cryptsetup silently
// lowers an argon2 memory cost to half of the memory it finds available, so a format VM sized like
// an unlock VM would write a cheaper keyslot than the user asked for.
func MemoryForFormat(kdfMiB int64) int {
	if kdfMiB <= 0 {
		return PlainMemoryMiB
	}
	return MemoryForKDF(2*kdfMiB + kdfMarginMiB/2)
}
