// Package vnet runs gvproxy's user-mode network (github.com/containers/gvisor-tap-vsock) inside the
// luksmount process: QEMU's virtio-net attaches to a unix socket, the guest gets 192.168.127.2 by
// DHCP, and a TCP listener on 127.0.0.1 forwards each connection to the guest's NFS port through
// the virtual network. The guest may not open connections of its own: see filter.go.
package vnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/containers/gvisor-tap-vsock/pkg/virtualnetwork"
	"github.com/sirupsen/logrus"
)

// Addresses of the virtual network (gvproxy's defaults).
const (
	Subnet     = "192.168.127.0/24"
	GatewayIP  = "192.168.127.1"
	GatewayMAC = "5a:94:ef:e4:0c:dd"
	GuestIP    = "192.168.127.2"
	GuestMAC   = "5a:94:ef:e4:0c:ee"
	// NFSPort is the guest port the forward reaches by default.
	NFSPort = 2049
	// DefaultMTU is the virtual link's MTU (the guest learns it from virtio-net's host_mtu, see
	// host/qemu Config.NetMTU). Chosen by make bench's network-path rows: see DefaultMTU's note in
	// mtu.go.
	DefaultMTU = defaultMTU
	// MaxMTU is the largest link MTU: QEMU's stream netdev frames up to 64 KiB + 4 KiB
	// (net/net.c NET_BUFSIZE) and 65520 leaves room for the Ethernet header below 64 KiB.
	MaxMTU = 65520
)

// Config configures a Network.
type Config struct {
	// SocketPath is where QEMU's `-netdev stream` connects. Its directory must be private (0700):
	// whoever connects first becomes the guest's link.
	SocketPath string
	// BindAddr is the forward's listen address; "" = 127.0.0.1. Anything else exposes the export
	// to other machines, so only a user's explicit choice may set it.
	BindAddr string
	// BindPort is the forward's port; 0 = a free one (see Network.Addr).
	BindPort int
	// GuestPort is where forwarded connections go in the guest; 0 = NFSPort.
	GuestPort int
	// MTU of the virtual link; 0 = DefaultMTU.
	MTU int
	// ExtraPorts are more guest ports reachable from the host, each through its own forward on
	// BindAddr (a free port: see ForwardAddr) and through DialGuest; the filter passes the guest's
	// replies from them as it does for GuestPort. For helper VMs (the bench's kernel nfsd needs
	// mountd's port too); the product serves one port.
	ExtraPorts []int
	// Batch coalesces frame writes towards the guest (see batchConn); nil = DefaultBatch.
	Batch *bool
	// Debug keeps gvisor-tap-vsock's own log (logrus, stderr). Off, it is silenced: it reports
	// expected events such as the VM's link going away as errors.
	Debug bool
}

// Network is a running virtual network with its port forward.
type Network struct {
	cfg   Config
	vn    *virtualnetwork.VirtualNetwork
	sock  net.Listener         // QEMU's side; closed after the first connection
	fwd   net.Listener         // the user's side, to GuestPort
	extra map[int]net.Listener // ExtraPorts' forwards, by guest port
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	guest string // GuestIP:GuestPort

	mu       sync.Mutex
	link     net.Conn // QEMU's connection, once attached
	conns    map[net.Conn]struct{}
	attached chan struct{}
	linkErr  error
	closed   bool
}

// disableFilter lets a test show that the guest could escape without filterConn.
var disableFilter bool

// ErrClosed is returned by calls on a closed Network.
var ErrClosed = errors.New("virtual network closed")

// Start creates the network, listens on cfg.SocketPath for QEMU and opens the forward.
func Start(cfg Config) (*Network, error) {
	if cfg.SocketPath == "" {
		return nil, errors.New("vnet: socket path not set")
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1"
	}
	if cfg.GuestPort == 0 {
		cfg.GuestPort = NFSPort
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 576 || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("vnet: MTU %d is out of range 576-%d", cfg.MTU, MaxMTU)
	}
	if cfg.GuestPort < 1 || cfg.GuestPort > 65535 || cfg.BindPort < 0 || cfg.BindPort > 65535 {
		return nil, fmt.Errorf("vnet: port out of range (guest %d, bind %d)", cfg.GuestPort, cfg.BindPort)
	}
	for _, p := range cfg.ExtraPorts {
		if p < 1 || p > 65535 || p == cfg.GuestPort {
			return nil, fmt.Errorf("vnet: extra guest port %d is out of range or repeats the served port", p)
		}
	}
	if !cfg.Debug {
		// gvisor-tap-vsock logs through the global logrus logger; nothing else here uses it.
		logrus.SetOutput(io.Discard)
	}
	vn, err := virtualnetwork.New(gvproxyConfig(cfg.MTU))
	if err != nil {
		return nil, fmt.Errorf("cannot create the virtual network: %w", err)
	}
	if err := os.Remove(cfg.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot remove stale socket %s: %w", cfg.SocketPath, err)
	}
	sock, err := net.Listen("unix", cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for QEMU's network on %s: %w", cfg.SocketPath, err)
	}
	fwd, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)))
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("cannot listen on %s port %d for the NFS forward: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	extra := map[int]net.Listener{}
	for _, p := range cfg.ExtraPorts {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, "0"))
		if err != nil {
			sock.Close()
			fwd.Close()
			for _, l := range extra {
				l.Close()
			}
			return nil, fmt.Errorf("cannot listen on %s for the forward to guest port %d: %w", cfg.BindAddr, p, err)
		}
		extra[p] = l
	}
	ctx, stop := context.WithCancel(context.Background())
	n := &Network{
		cfg: cfg, vn: vn, sock: sock, fwd: fwd, extra: extra, ctx: ctx, stop: stop,
		guest:    net.JoinHostPort(GuestIP, strconv.Itoa(cfg.GuestPort)),
		conns:    map[net.Conn]struct{}{},
		attached: make(chan struct{}),
	}
	n.wg.Add(2 + len(extra))
	go n.acceptLink()
	go n.acceptForward(fwd, n.guest)
	for p, l := range extra {
		go n.acceptForward(l, net.JoinHostPort(GuestIP, strconv.Itoa(p)))
	}
	return n, nil
}

// ForwardAddr is the host address forwarded to guest port p (GuestPort or one of ExtraPorts),
// nil for any other port.
func (n *Network) ForwardAddr(p int) *net.TCPAddr {
	if p == n.cfg.GuestPort {
		return n.Addr()
	}
	if l, ok := n.extra[p]; ok {
		return l.Addr().(*net.TCPAddr)
	}
	return nil
}

// served are the guest ports the filter passes replies from.
func (n *Network) served() []uint16 {
	ports := []uint16{uint16(n.cfg.GuestPort)}
	for _, p := range n.cfg.ExtraPorts {
		ports = append(ports, uint16(p))
	}
	return ports
}

// gvproxyConfig is the library configuration: gvproxy's addresses, and nothing that reaches out of
// the virtual network (no NAT to the host, no port forwards of its own, no DNS zones).
func gvproxyConfig(mtu int) *types.Configuration {
	return &types.Configuration{
		MTU:               mtu,
		Subnet:            Subnet,
		GatewayIP:         GatewayIP,
		GatewayMacAddress: GatewayMAC,
		DHCPStaticLeases:  map[string]string{GuestIP: GuestMAC},
		Protocol:          types.QemuProtocol,
	}
}

// acceptLink attaches the first connection on the socket (QEMU) and refuses any other.
func (n *Network) acceptLink() {
	defer n.wg.Done()
	conn, err := n.sock.Accept()
	n.sock.Close()
	os.Remove(n.cfg.SocketPath)
	if err != nil {
		n.mu.Lock()
		n.linkErr = err
		n.mu.Unlock()
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		conn.Close()
		return
	}
	n.link = conn
	close(n.attached)
	n.mu.Unlock()
	var link net.Conn = newFilterConn(conn, n.cfg.MTU, n.served())
	if disableFilter {
		link = conn
	}
	if n.cfg.Batch == nil && DefaultBatch || n.cfg.Batch != nil && *n.cfg.Batch {
		link = &batchedLink{Conn: link, w: newBatchConn(conn)}
	}
	err = n.vn.AcceptQemu(n.ctx, link)
	n.mu.Lock()
	n.linkErr = err
	n.mu.Unlock()
}

// Attached is closed once QEMU has connected its network device.
func (n *Network) Attached() <-chan struct{} { return n.attached }

// Addr is the forward's listen address, e.g. 127.0.0.1:50123.
func (n *Network) Addr() *net.TCPAddr { return n.fwd.Addr().(*net.TCPAddr) }

// GuestAddr is where forwarded connections go inside the virtual network.
func (n *Network) GuestAddr() string { return n.guest }

// DialGuest opens a TCP connection to the guest through the virtual network, with no listening
// socket on the host.
func (n *Network) DialGuest(ctx context.Context, port int) (net.Conn, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	addr := net.JoinHostPort(GuestIP, strconv.Itoa(port))
	c, err := n.vn.DialContextTCP(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the VM at %s: %w", addr, err)
	}
	return c, nil
}

// Stats reports bytes sent to and received from the guest's link.
func (n *Network) Stats() (sent, received uint64) { return n.vn.BytesSent(), n.vn.BytesReceived() }

func (n *Network) acceptForward(ln net.Listener, guest string) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: don't spin
			continue
		}
		if !n.track(c) {
			c.Close()
			return
		}
		n.wg.Add(1)
		go n.forward(c, guest)
	}
}

func (n *Network) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Network) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	c.Close()
}

// forward proxies one accepted connection to the guest.
func (n *Network) forward(c net.Conn, guest string) {
	defer n.wg.Done()
	defer n.untrack(c)
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	g, err := n.vn.DialContextTCP(ctx, guest)
	cancel()
	if err != nil {
		return // the client sees the connection close; it retries as NFS clients do
	}
	if !n.track(g) {
		g.Close()
		return
	}
	defer n.untrack(g)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Pass the half-close on so the other side sees EOF while its replies still flow.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(g, c)
	go pipe(c, g)
	<-done
	<-done
}

// Close stops the forward, closes every forwarded connection and detaches QEMU.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.stop()
	n.fwd.Close()
	for _, l := range n.extra {
		l.Close()
	}
	n.sock.Close()
	if n.link != nil {
		n.link.Close()
	}
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
	os.Remove(n.cfg.SocketPath)
	return nil
}
