package doctor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/luksmount/luksmount/host/qemu"
)

func sysctlUint32(string) (uint32, error) { return 0, errors.New("no sysctl on Linux") }

func rawDiskAccess(string) error { return nil }

const kvmCreateVM = 0xae01 // _IO(KVMIO, 0x01); x/sys/unix does not define it

// probeKVM is what QEMU's accelerator choice checks (CPU flags, API version) plus creating a
// VM: a /dev/kvm that opens but cannot create a VM would fail QEMU with -accel kvm.
func probeKVM() error {
	if err := qemu.CheckAccel(qemu.AccelKVM, "linux", runtime.GOARCH, qemu.Arch(runtime.GOARCH)); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), qemu.ErrAccelUnavailable.Error()+": "))
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open /dev/kvm: %w", err)
	}
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), kvmCreateVM)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VM on /dev/kvm: %w", err)
	}
	unix.Close(fd)
	return nil
}
