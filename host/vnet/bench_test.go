package vnet

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkStream is the host side of the network path with a gvisor stack standing in for the
// guest: what gvproxy, the filter and the batcher cost per MTU, without QEMU or a guest kernel.
// `go test -run X -bench Stream ./host/vnet`; make bench measures the real path.
func BenchmarkStream(b *testing.B) {
	for _, mtu := range []int{1500, 9000, MaxMTU} {
		for _, batch := range []bool{false, true} {
			b.Run(fmt.Sprintf("mtu=%d/batch=%v", mtu, batch), func(b *testing.B) {
				n := startNetwork(b, Config{MTU: mtu, Batch: &batch, ExtraPorts: []int{5201}})
				g := startFakeGuestMTU(b, n.cfg.SocketPath, uint32(mtu))
				sink(b, g, NFSPort)
				const chunk = 1 << 20
				buf := make([]byte, chunk)
				c, err := net.Dial("tcp", n.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(chunk)
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				c.(*net.TCPConn).CloseWrite()
				io.ReadAll(c) // the sink closes once it has read everything
				b.StopTimer()
				c.Close()
			})
		}
	}
}

// sink reads and discards every connection to port in the fake guest (host->guest).
func sink(b *testing.B, g *fakeGuest, port int) {
	l, err := gonetListen(g, port)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
}

// BenchmarkRoundTrip is one small request and its reply through the forward (an NFS GETATTR is
// ~200 bytes each way): the path's latency per call, which sets small-file rates.
func BenchmarkRoundTrip(b *testing.B) {
	n := startNetwork(b, Config{ExtraPorts: []int{5201}})
	g := startFakeGuestMTU(b, n.cfg.SocketPath, uint32(DefaultMTU))
	l, err := gonetListen(g, NFSPort)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 200)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						c.Close()
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 200)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
