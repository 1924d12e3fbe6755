package netconf

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Loopback brings lo up.
func Loopback() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("cannot find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("cannot bring lo up: %w", err)
	}
	return nil
}

// Configure brings c.Interface up with c.Address and a default route via c.Gateway. The interface
// may appear a moment after its driver loads, so it is waited for up to wait.
func Configure(c Config, wait time.Duration) error {
	var link netlink.Link
	deadline := time.Now().Add(wait)
	for {
		var err error
		link, err = netlink.LinkByName(c.Interface)
		if err == nil {
			break
		}
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("cannot find %s: %w", c.Interface, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrNoInterface, c.Interface)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.MTU > 0 {
		if err := netlink.LinkSetMTU(link, c.MTU); err != nil {
			return fmt.Errorf("cannot set the MTU of %s: %w", c.Interface, err)
		}
	}
	addr := &netlink.Addr{IPNet: c.Address}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("cannot set %s on %s: %w", c.Address, c.Interface, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("cannot bring %s up: %w", c.Interface, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: nil, Gw: c.Gateway, Scope: netlink.SCOPE_UNIVERSE}
	if err := netlink.RouteReplace(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("cannot add the default route via %s: %w", c.Gateway, err)
	}
	return nil
}
