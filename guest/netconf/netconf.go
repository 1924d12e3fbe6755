// Package netconf brings up the guest network with netlink: lo, and eth0 with a static address on
// gvproxy's default subnet (no DHCP client in the guest).
package netconf

import (
	"errors"
	"net"
)

// Config is a static interface setup.
type Config struct {
	Interface string     // eth0
	Address   *net.IPNet // 192.168.127.2/24
	Gateway   net.IP     // 192.168.127.1
	MTU       int        // 0 = leave the driver's default
}

// Default is gvproxy's default subnet: the guest is .2 and the gateway .1.
func Default() Config {
	return Config{
		Interface: "eth0",
		Address:   &net.IPNet{IP: net.IPv4(192, 168, 127, 2).To4(), Mask: net.CIDRMask(24, 32)},
		Gateway:   net.IPv4(192, 168, 127, 1).To4(),
	}
}

// ErrNoInterface means the VM has no such network interface (started without a network device).
var ErrNoInterface = errors.New("no such network interface")

// UserNet is QEMU user networking's fixed layout (test and bench client VMs): the guest is
// 10.0.2.15/24 and 10.0.2.2, the gateway, is the host's loopback.
func UserNet() Config {
	return Config{
		Interface: "eth0",
		Address:   &net.IPNet{IP: net.IPv4(10, 0, 2, 15).To4(), Mask: net.CIDRMask(24, 32)},
		Gateway:   net.IPv4(10, 0, 2, 2).To4(),
	}
}
