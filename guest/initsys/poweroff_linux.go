package initsys

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// QuiesceNetwork takes every network interface but loopback down, so that nothing transmits or
// polls a virtio-net queue when the kernel's device_shutdown() breaks and resets it.
//
// Why: Debian's 6.1 kernel carries "virtio: break and reset virtio devices on device_shutdown()"
// (6.1.191, CVE-2025-38064) but not its follow-up "virtio_ring: fix infinite loop in
// virtnet_poll_cleantx when device is broken" (upstream 0d0eff39ceb3). With the interface still up,
// a TX completion pass racing the break spins forever in softirq (virtqueue_get_buf answers
// nothing once the queue is broken, and the ring index it compares against was reset), so the
// kernel never reaches "reboot: Power down" and the RCU stall detector reports that CPU. Closing
// the interface first (dev_close: the qdisc is deactivated and in-flight transmits waited for,
// then virtnet_close disables the RX and TX NAPI contexts, waiting for a running poll) leaves the
// queues idle when they are broken.
func QuiesceNetwork() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("cannot list network interfaces: %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open a socket to take the network down: %w", err)
	}
	defer unix.Close(fd)
	var errs []error
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 {
			continue
		}
		if err := linkDown(fd, ifc.Name); err != nil {
			errs = append(errs, fmt.Errorf("cannot take %s down: %w", ifc.Name, err))
		}
	}
	return errors.Join(errs...)
}

func linkDown(fd int, name string) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() &^ unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
