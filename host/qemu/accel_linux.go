package qemu

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var localProbe = hostProbe{
	cpuinfo: func() ([]byte, error) { return os.ReadFile("/proc/cpuinfo") },
	kvm:     probeKVM,
}

const (
	kvmAPIVersion    = 12     // the only KVM API version there has ever been
	kvmGetAPIVersion = 0xae00 // _IO(KVMIO, 0x00); x/sys/unix does not define it
)

func probeKVM() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open /dev/kvm: %w", err)
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil {
		return fmt.Errorf("KVM_GET_API_VERSION on /dev/kvm: %w", err)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("/dev/kvm speaks API version %d, QEMU needs %d", v, kvmAPIVersion)
	}
	return nil
}
