package agent

import (
	"slices"
	"testing"

	"github.com/luksmount/luksmount/guest/initsys"
)

func TestTransportsLoadAfterTheDrivers(t *testing.T) {
	const d = "/lib/modules/k/kernel/drivers/"
	mods := []initsys.Module{
		{Path: d + "virtio/virtio_ring.ko"},
		{Path: d + "virtio/virtio.ko", Deps: []string{d + "virtio/virtio_ring.ko"}},
		{Path: d + "virtio/virtio_pci_modern_dev.ko"},
		{Path: d + "virtio/virtio_pci.ko", Deps: []string{d + "virtio/virtio.ko", d + "virtio/virtio_pci_modern_dev.ko"}},
		{Path: d + "block/virtio_blk.ko", Deps: []string{d + "virtio/virtio.ko"}},
		{Path: d + "net/virtio_net.ko", Deps: []string{d + "virtio/virtio.ko"}},
		{Path: d + "char/hw_random/virtio-rng.ko", Deps: []string{d + "virtio/virtio.ko"}},
		{Path: d + "acpi/button.ko"},
	}
	got := transportsLast(mods)
	pci := got[3]
	for _, want := range []string{d + "block/virtio_blk.ko", d + "net/virtio_net.ko", d + "char/hw_random/virtio-rng.ko", d + "virtio/virtio.ko"} {
		if !slices.Contains(pci.Deps, want) {
			t.Errorf("virtio_pci deps = %v; want %s among them", pci.Deps, want)
		}
	}
	for _, m := range got {
		if slices.Contains(m.Deps, d+"virtio/virtio_pci.ko") {
			t.Errorf("%s now waits for virtio_pci: a cycle", m.Path)
		}
	}
	if len(mods[3].Deps) != 2 {
		t.Errorf("the input was modified: %v", mods[3].Deps)
	}
	if len(got[4].Deps) != 1 || len(got[7].Deps) != 0 {
		t.Errorf("drivers' deps changed: %v, %v", got[4].Deps, got[7].Deps)
	}
}
