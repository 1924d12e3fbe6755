package agent

import (
	"path/filepath"
	"strings"

	"github.com/luksmount/luksmount/guest/initsys"
)

// transportsLast makes the virtio transport (virtio_pci) load after every virtio device driver in
// mods, so the disks get their names in PCI order: /dev/vda is the host's first -drive, vdb its
// second. Loaded in parallel, virtio_pci may register devices while virtio_blk's driver_register
// walks the bus, and virtblk_probe hands out indices (ida_alloc in drivers/block/virtio_blk.c) in
// whatever order the two meet: a test with 15 disks saw vdb name another disk in 2 of 5 boots.
// With the drivers in first, virtio_pci's probe walks the PCI devices one by one and each binds
// synchronously at device_add, in slot order (drivers/base/bus.c, drivers/virtio/virtio.c).
func transportsLast(mods []initsys.Module) []initsys.Module {
	var drivers []string
	for _, m := range mods {
		if n := modName(m.Path); strings.HasPrefix(n, "virtio_") && !isTransport(n) && !isVirtioCore(n) {
			drivers = append(drivers, m.Path)
		}
	}
	out := make([]initsys.Module, len(mods))
	for i, m := range mods {
		out[i] = m
		if isTransport(modName(m.Path)) {
			out[i].Deps = append(append([]string{}, m.Deps...), drivers...)
		}
	}
	return out
}

func modName(path string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(path), ".ko"), "-", "_")
}

func isTransport(n string) bool { return n == "virtio_pci" || n == "virtio_mmio" }

// isVirtioCore: the bus and ring modules (and virtio_pci's helper libraries) that drivers and
// transports both depend on.
func isVirtioCore(n string) bool {
	return n == "virtio" || n == "virtio_ring" || strings.HasPrefix(n, "virtio_pci_")
}
