package agent

import "testing"

// What must be loaded before Hello: virtio device drivers and the power button's; vsock's only
// with a vsock device; never virtio-mmio (all our devices are on PCI), dm-crypt or crypto.
func TestEarlyModules(t *testing.T) {
	k := "/lib/modules/6.1.0-56-cloud-amd64/kernel/"
	for _, tc := range []struct {
		path         string
		vsock, early bool
	}{
		{k + "drivers/virtio/virtio_pci.ko", false, true},
		{k + "drivers/virtio/virtio_ring.ko", false, true},
		{k + "drivers/char/hw_random/virtio-rng.ko", false, true},
		{k + "drivers/acpi/button.ko", false, true},
		{k + "drivers/input/evdev.ko", false, true},
		{k + "drivers/virtio/virtio_mmio.ko", false, false},
		{k + "drivers/md/dm-crypt.ko", false, false},
		{k + "arch/x86/crypto/aesni-intel.ko", false, false},
		{k + "net/vmw_vsock/vsock.ko", false, false},
		{k + "net/vmw_vsock/vsock.ko", true, true},
		{k + "net/vmw_vsock/vmw_vsock_virtio_transport.ko", true, true},
	} {
		if got := earlyModule(tc.vsock)(tc.path); got != tc.early {
			t.Errorf("earlyModule(vsock=%v)(%s) = %v, want %v", tc.vsock, tc.path, got, tc.early)
		}
	}
}
