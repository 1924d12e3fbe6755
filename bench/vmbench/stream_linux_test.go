package vmbench

import (
	"net"
	"testing"
	"time"

	"github.com/luksmount/luksmount/bench/guestinit"
)

// The host side of the network-path rows against the guest's stream server, on loopback.
func TestStreamAgainstGuestServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go guestinit.ServeStream(c)
		}
	}()
	const size = 3<<20 + 17
	up, down, err := Stream(l.Addr().String(), size, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if up.Bytes != size || down.Bytes != size || up.MBps <= 0 || down.MBps <= 0 {
		t.Errorf("up %+v, down %+v", up, down)
	}
}
