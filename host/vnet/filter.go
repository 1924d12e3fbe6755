package vnet

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
)

// gvisor-tap-vsock's TCP and UDP forwarders dial ANY destination the guest sends a SYN or datagram
// to (the host's own services, the LAN, the internet), and the library has no switch to turn them
// off. The guest needs none of that: it only answers connections the host opens to its NFS port,
// and asks for a DHCP lease. So filterConn sits between QEMU's socket and the switch and passes
// only those frames from the guest:
//
//   - ARP;
//   - IPv4 UDP to port 67 (DHCP) addressed to the gateway or broadcast;
//   - IPv4 TCP from a served port (GuestPort, ExtraPorts) to the gateway, without a bare SYN (replies on connections the
//     host opened; a guest-initiated connection starts with SYN and is dropped).
//
// Everything else (other TCP, other UDP such as DNS, ICMP, IPv6, IP fragments) is dropped. It also
// refuses frames larger than the MTU allows before the library allocates a buffer of the size the
// guest claims (fixed upstream after v0.8.9).
type filterConn struct {
	net.Conn
	r        *bufio.Reader
	maxFrame int
	served   []uint16
	pending  []byte // framed, allowed frames not yet returned by Read
	hdr      [4]byte
	dropped  atomic.Uint64
}

func newFilterConn(c net.Conn, mtu int, served []uint16) *filterConn {
	return &filterConn{
		Conn:     c,
		r:        bufio.NewReaderSize(c, 64*1024),
		maxFrame: mtu + 14 + 4, // Ethernet header and a VLAN tag
		served:   served,
	}
}

// Read returns the allowed frames, each still with its 4-byte big-endian length prefix.
func (f *filterConn) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
			return 0, err
		}
		size := int(binary.BigEndian.Uint32(f.hdr[:]))
		if size > f.maxFrame || size < 14 {
			return 0, fmt.Errorf("vnet: guest sent a %d-byte frame (limit %d)", size, f.maxFrame)
		}
		frame := make([]byte, 4+size)
		copy(frame, f.hdr[:])
		if _, err := io.ReadFull(f.r, frame[4:]); err != nil {
			return 0, err
		}
		if allowFromGuest(frame[4:], f.served) {
			f.pending = frame
		} else {
			f.dropped.Add(1)
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

var (
	gatewayIP4   = [4]byte{192, 168, 127, 1}
	broadcastIP4 = [4]byte{255, 255, 255, 255}
)

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	protoTCP      = 6
	protoUDP      = 17
	tcpFlagSYN    = 0x02
	tcpFlagACK    = 0x10
)

// allowFromGuest applies the policy above to one Ethernet frame.
func allowFromGuest(frame []byte, served []uint16) bool {
	if len(frame) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherTypeARP:
		return true
	case etherTypeIPv4:
	default:
		return false
	}
	ip := frame[14:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total < ihl || total > len(ip) {
		return false
	}
	if flagsFrag := binary.BigEndian.Uint16(ip[6:8]); flagsFrag&0x3fff != 0 { // MF or an offset
		return false
	}
	var dst [4]byte
	copy(dst[:], ip[16:20])
	l4 := ip[ihl:total]
	switch ip[9] {
	case protoUDP:
		if len(l4) < 8 {
			return false
		}
		return binary.BigEndian.Uint16(l4[2:4]) == 67 && (dst == gatewayIP4 || dst == broadcastIP4)
	case protoTCP:
		if len(l4) < 20 || dst != gatewayIP4 {
			return false
		}
		if !slices.Contains(served, binary.BigEndian.Uint16(l4[0:2])) {
			return false
		}
		flags := l4[13]
		return flags&tcpFlagSYN == 0 || flags&tcpFlagACK != 0
	}
	return false
}
