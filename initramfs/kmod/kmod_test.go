package kmod

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// A trimmed copy of the shape of Debian 6.1 cloud-amd64's modules.dep.
const fixtureDep = `kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-crypt.ko: kernel/drivers/md/dm-mod.ko
kernel/crypto/cryptd.ko:
kernel/crypto/crypto_simd.ko: kernel/crypto/cryptd.ko
kernel/arch/x86/crypto/aesni-intel.ko: kernel/crypto/crypto_simd.ko kernel/crypto/cryptd.ko
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/loop.ko:
`

const fixtureBuiltin = `kernel/fs/ext4/ext4.ko
kernel/fs/jbd2/jbd2.ko
kernel/crypto/sha256_generic.ko
`

func index(t *testing.T) *Index {
	t.Helper()
	ix, err := Parse(strings.NewReader(fixtureDep), strings.NewReader(fixtureBuiltin))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestResolveOrder(t *testing.T) {
	p, err := index(t).Resolve([]string{"virtio_pci", "virtio_blk", "ext4", "dm-crypt", "aesni_intel", "vmw_vsock_virtio_transport", "virtio-ring"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
		"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
		"kernel/drivers/block/virtio_blk.ko",
		"kernel/drivers/md/dm-mod.ko",
		"kernel/drivers/md/dm-crypt.ko",
		"kernel/crypto/cryptd.ko",
		"kernel/crypto/crypto_simd.ko",
		"kernel/arch/x86/crypto/aesni-intel.ko",
		"kernel/net/vmw_vsock/vsock.ko",
		"kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
		"kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko",
	}
	if !reflect.DeepEqual(p.Load, want) {
		t.Errorf("Load =\n%s\nwant\n%s", strings.Join(p.Load, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(p.Builtin, []string{"ext4"}) {
		t.Errorf("Builtin = %q; want [ext4]", p.Builtin)
	}
	// Every module must come after all of its dependencies.
	pos := map[string]int{}
	for i, m := range p.Load {
		pos[m] = i
	}
	ix := index(t)
	for _, m := range p.Load {
		for _, d := range ix.deps[m] {
			if pos[d] >= pos[m] {
				t.Errorf("%s loads before its dependency %s", m, d)
			}
		}
	}
}

func TestResolveUnknown(t *testing.T) {
	_, err := index(t).Resolve([]string{"virtio_blk", "nosuchmod"})
	if !errors.Is(err, ErrUnknownModule) || !strings.Contains(err.Error(), "nosuchmod") {
		t.Errorf("err = %v; want ErrUnknownModule naming nosuchmod", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"no colon here\n", "a.ko: missing.ko\n"} {
		if _, err := Parse(strings.NewReader(in), nil); err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", in)
		}
	}
}

func TestCycle(t *testing.T) {
	ix, err := Parse(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Resolve([]string{"a"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("err = %v; want a cycle error", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/arch/x86/crypto/aesni-intel.ko": "aesni_intel",
		"virtio-rng":                            "virtio_rng",
		"kernel/fs/ext4/ext4.ko.xz":             "ext4",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q; want %q", in, got, want)
		}
	}
}
