package cli

import (
	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/qemu"
)

// maxMemoryMiB is the most --memory accepted (64 GiB: beyond any keyslot's KDF).
const maxMemoryMiB = 65536

// memoryFlag is --memory for every command that boots a VM (mount, format, check); read it
// with vmMemory, which holds the one floor they all share.
func memoryFlag(usage, category string) *ucli.IntFlag {
	return &ucli.IntFlag{Name: "memory", Usage: usage, Category: category}
}

// vmMemory is --memory in MiB (0 = sized by the supervisor). Below qemu.MinMemoryMiB the guest
// image (about 40 MiB unpacked, next to its compressed copy and the kernel) no longer unpacks
// whole: the kernel says "Initramfs unpacking failed" and tools such as cryptsetup go missing.
func vmMemory(c *ucli.Context) (int, error) {
	m := c.Int("memory")
	switch {
	case m == 0 && !c.IsSet("memory"):
		return 0, nil
	case m < qemu.MinMemoryMiB:
		return 0, usagef("--memory %d is too little: the VM needs at least %d MiB to unpack its image; give --memory %d or more, or leave it out to size the VM from the drive", m, qemu.MinMemoryMiB, qemu.MinMemoryMiB)
	case m > maxMemoryMiB:
		return 0, usagef("--memory %d is out of range: give MiB between %d and %d", m, qemu.MinMemoryMiB, maxMemoryMiB)
	}
	return m, nil
}
