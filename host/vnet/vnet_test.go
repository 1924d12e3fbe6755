package vnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// fakeGuest is a second gvisor stack standing in for the VM: it speaks QEMU's stream framing on
// the network socket, as `-netdev stream` does, and has the guest's static address.
type fakeGuest struct {
	s    *stack.Stack
	conn net.Conn
	wg   sync.WaitGroup
}

func startFakeGuest(t testing.TB, socket string) *fakeGuest {
	t.Helper()
	return startFakeGuestMTU(t, socket, DefaultMTU)
}

func startFakeGuestMTU(t testing.TB, socket string, mtu uint32) *fakeGuest {
	t.Helper()
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC(GuestMAC)
	ep := channel.New(256, mtu, tcpip.LinkAddress(mac))
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := s.CreateNIC(1, ethernet.New(ep)); err != nil {
		t.Fatal(err)
	}
	addr := tcpip.AddrFrom4Slice(net.ParseIP(GuestIP).To4())
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: 24}}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4Slice(net.ParseIP(GatewayIP).To4()), NIC: 1}})
	g := &fakeGuest{s: s, conn: conn}
	ctx, cancel := context.WithCancel(context.Background())
	g.wg.Add(2)
	go func() { // guest -> network
		defer g.wg.Done()
		for {
			pkt := ep.ReadContext(ctx)
			if pkt == nil {
				return
			}
			buf := pkt.ToView().AsSlice()
			frame := binary.BigEndian.AppendUint32(nil, uint32(len(buf)))
			frame = append(frame, buf...)
			pkt.DecRef()
			if _, err := conn.Write(frame); err != nil {
				return
			}
		}
	}()
	go func() { // network -> guest
		defer g.wg.Done()
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(conn, hdr[:]); err != nil {
				return
			}
			frame := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(conn, frame); err != nil {
				return
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
			ep.InjectInbound(0, pkt)
			pkt.DecRef()
		}
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		g.wg.Wait()
		s.Close()
	})
	return g
}

func gonetListen(g *fakeGuest, port int) (*gonet.TCPListener, error) {
	return gonet.ListenTCP(g.s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4Slice(net.ParseIP(GuestIP).To4()), Port: uint16(port)}, ipv4.ProtocolNumber)
}

func (g *fakeGuest) echoServer(t *testing.T, port int) {
	l, err := gonetListen(g, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

func (g *fakeGuest) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return gonet.DialContextTCP(ctx, g.s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4Slice(net.ParseIP(host).To4()), Port: uint16(p)}, ipv4.ProtocolNumber)
}

func privateDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "vnet") // short: unix socket paths are limited to ~104 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func startNetwork(t testing.TB, cfg Config) *Network {
	t.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(privateDir(t), "net.sock")
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestForward(t *testing.T) {
	n := startNetwork(t, Config{})
	if ip := n.Addr().IP.String(); ip != "127.0.0.1" || n.Addr().Port == 0 {
		t.Fatalf("forward listens on %s, want 127.0.0.1 and a port", n.Addr())
	}
	g := startFakeGuest(t, n.cfg.SocketPath)
	g.echoServer(t, NFSPort)
	select {
	case <-n.Attached():
	case <-time.After(5 * time.Second):
		t.Fatal("the guest link never attached")
	}

	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 4<<20)
	rand.Read(data)
	start := time.Now()
	go func() { c.Write(data); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo through the forward returned %d bytes, differing from the %d sent", len(got), len(data))
	}
	el := time.Since(start)
	t.Logf("4 MiB echoed through the forward in %v (%.0f MiB/s each way)", el, 4/el.Seconds())

	// A second QEMU (or anyone else) cannot attach: the socket is gone after the first.
	if _, err := net.Dial("unix", n.cfg.SocketPath); err == nil {
		t.Error("a second connection to the network socket was accepted")
	}

	// DialGuest reaches the guest without the host listener.
	dc, err := n.DialGuest(context.Background(), NFSPort)
	if err != nil {
		t.Fatal(err)
	}
	dc.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(dc, buf); err != nil || string(buf) != "ping" {
		t.Errorf("DialGuest echo = %q, %v", buf, err)
	}
	dc.Close()
}

func TestForwardNoGuestServer(t *testing.T) {
	n := startNetwork(t, Config{})
	startFakeGuest(t, n.cfg.SocketPath) // nothing listens on 2049
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read from a forward with no guest server returned data")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the forward did not close the connection when the guest refused it")
	}
}

// The guest must not be able to open connections to the host or beyond. The first attempt runs
// with the filter off to show the probe would see an escape.
func TestGuestCannotDialOut(t *testing.T) {
	// The guest's own stack will not send to 127.0.0.1, so aim at one of the host's real addresses.
	hostIP := hostAddress(t)
	target, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host"))
			c.Close()
		}
	}()
	for _, filtered := range []bool{false, true} {
		t.Run("filter="+strconv.FormatBool(filtered), func(t *testing.T) {
			disableFilter = !filtered
			defer func() { disableFilter = false }()
			n := startNetwork(t, Config{})
			g := startFakeGuest(t, n.cfg.SocketPath)
			<-n.Attached()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			c, err := g.dial(ctx, target.Addr().String())
			reached := false
			if err == nil {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				b, _ := io.ReadAll(c)
				reached = string(b) == "host"
				c.Close()
			}
			if reached != !filtered {
				t.Errorf("guest reached the host's listener: %v (filter %v, dial error %v)", reached, filtered, err)
			}
		})
	}
}

func TestOversizedFrameDropsLink(t *testing.T) {
	n := startNetwork(t, Config{})
	c, err := net.Dial("unix", n.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-n.Attached()
	c.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Errorf("link not closed after a 1 GiB frame header: %v", err)
	}
}

func TestBindAddr(t *testing.T) {
	n := startNetwork(t, Config{BindAddr: "0.0.0.0"})
	if !n.Addr().IP.IsUnspecified() {
		t.Errorf("BindAddr 0.0.0.0 gave %s", n.Addr())
	}
	if _, err := Start(Config{SocketPath: filepath.Join(privateDir(t), "s"), BindAddr: "127.0.0.1", BindPort: n.Addr().Port}); err == nil {
		t.Error("a second forward on a taken port started")
	}
}

func TestStartErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{SocketPath: "/x", MTU: 100},
		{SocketPath: "/x", MTU: MaxMTU + 1},
		{SocketPath: "/x", ExtraPorts: []int{NFSPort}},
		{SocketPath: "/x", ExtraPorts: []int{0}},
		{SocketPath: "/x", GuestPort: 70000},
		{SocketPath: "/nonexistent-dir/net.sock"},
	} {
		if n, err := Start(cfg); err == nil {
			n.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestClose(t *testing.T) {
	n := startNetwork(t, Config{})
	g := startFakeGuest(t, n.cfg.SocketPath)
	g.echoServer(t, NFSPort)
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	addr := n.Addr().String()
	done := make(chan error)
	go func() { done <- n.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung with a forwarded connection open")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("forwarded connection still open after Close: %v", err)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Error("forward still accepting after Close")
	}
	if _, err := n.DialGuest(context.Background(), NFSPort); !errors.Is(err, ErrClosed) {
		t.Errorf("DialGuest after Close: %v", err)
	}
}

// hostAddress is a non-loopback IPv4 address of this machine.
func hostAddress(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address to test against")
	return ""
}

// Extra ports get their own forward, the filter passes their replies, and a jumbo MTU carries
// the stream in frames far larger than Ethernet's.
func TestExtraPortsAndJumboMTU(t *testing.T) {
	n := startNetwork(t, Config{MTU: MaxMTU, ExtraPorts: []int{32767}})
	g := startFakeGuestMTU(t, n.cfg.SocketPath, MaxMTU)
	g.echoServer(t, NFSPort)
	g.echoServer(t, 32767)
	if n.ForwardAddr(NFSPort).String() != n.Addr().String() || n.ForwardAddr(1234) != nil {
		t.Fatalf("ForwardAddr: %v %v", n.ForwardAddr(NFSPort), n.ForwardAddr(1234))
	}
	for _, p := range []int{NFSPort, 32767} {
		echoThrough(t, n.ForwardAddr(p).String(), 1<<20)
	}
	sent, _ := n.Stats()
	if sent == 0 {
		t.Error("no bytes counted towards the guest")
	}
}

// echoThrough sends size random bytes to an echo server at addr and checks they come back.
func echoThrough(t *testing.T, addr string, size int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, size)
	rand.Read(data)
	go func() { c.Write(data); c.(*net.TCPConn).CloseWrite() }()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo through %s returned %d of %d bytes (%v)", addr, len(got), len(data), err)
	}
}
