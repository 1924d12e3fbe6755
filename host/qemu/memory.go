package qemu

// Guest memory sizing. The guest has no swap and the initramfs lives in RAM, so the VM needs the
// kernel + initramfs + agent + cryptsetup baseline plus whatever the LUKS keyslot's KDF asks for
// (argon2 memory cost; pbkdf2 needs none).
const (
	// PlainMemoryMiB is enough for an unencrypted filesystem: kernel, the unpacked initramfs,
	// the agent, the NFS server and page cache for its I/O.
	PlainMemoryMiB = 256
	// kdfMarginMiB is what must be free besides the KDF's own buffer for an unlock to succeed.
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
