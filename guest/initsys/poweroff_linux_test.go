package initsys

import (
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// QuiesceNetwork takes every interface but loopback down, in a private network namespace (root:
// the unit tests run as root in CI, like the VM tier) with two veth ends and lo up.
func TestQuiesceNetworkTakesAllButLoopbackDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (a private network namespace); run the unit tests as root")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread, in its own namespace, exits with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lmq0"}, PeerName: "lmq1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Errorf("add a veth pair: %v", err)
			return
		}
		for _, n := range []string{"lo", "lmq0", "lmq1"} {
			l, err := netlink.LinkByName(n)
			if err == nil {
				err = netlink.LinkSetUp(l)
			}
			if err != nil {
				t.Errorf("bring %s up: %v", n, err)
				return
			}
		}
		if err := QuiesceNetwork(); err != nil {
			t.Errorf("QuiesceNetwork: %v", err)
		}
		for n, wantUp := range map[string]bool{"lo": true, "lmq0": false, "lmq1": false} {
			l, err := netlink.LinkByName(n)
			if err != nil {
				t.Errorf("%s: %v", n, err)
				continue
			}
			if up := l.Attrs().Flags&net.FlagUp != 0; up != wantUp {
				t.Errorf("%s: up %v after QuiesceNetwork, want %v", n, up, wantUp)
			}
		}
	}()
	<-done
}
