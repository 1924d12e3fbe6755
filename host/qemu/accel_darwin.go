package qemu

import (
	"errors"

	"golang.org/x/sys/unix"
)

var localProbe = hostProbe{hvf: probeHVF}

func probeHVF() error {
	v, err := unix.SysctlUint32("kern.hv_support")
	if err != nil || v == 0 {
		return errors.New("this Mac does not support Hypervisor.framework (sysctl kern.hv_support is 0)")
	}
	return nil
}
