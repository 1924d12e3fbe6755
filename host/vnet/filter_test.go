package vnet

import (
	"encoding/binary"
	"testing"
)

// frame builds an Ethernet+IPv4 frame with a minimal TCP or UDP header.
func frame(proto byte, dst [4]byte, srcPort, dstPort uint16, tcpFlags byte, fragOff uint16) []byte {
	f := make([]byte, 14+20+20)
	binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	binary.BigEndian.PutUint16(ip[6:], fragOff)
	ip[9] = proto
	copy(ip[12:], []byte{192, 168, 127, 2})
	copy(ip[16:], dst[:])
	l4 := ip[20:]
	binary.BigEndian.PutUint16(l4[0:], srcPort)
	binary.BigEndian.PutUint16(l4[2:], dstPort)
	l4[13] = tcpFlags
	return f
}

func TestAllowFromGuest(t *testing.T) {
	elsewhere := [4]byte{10, 0, 0, 1}
	arpFrame := make([]byte, 42)
	binary.BigEndian.PutUint16(arpFrame[12:], etherTypeARP)
	ipv6 := make([]byte, 60)
	binary.BigEndian.PutUint16(ipv6[12:], 0x86dd)
	icmp := frame(1, gatewayIP4, 0, 0, 0, 0)
	truncated := frame(protoTCP, gatewayIP4, 2049, 40000, tcpFlagACK, 0)
	binary.BigEndian.PutUint16(truncated[16:], 400) // IP total length beyond the frame

	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"arp", arpFrame, true},
		{"nfs reply ack", frame(protoTCP, gatewayIP4, 2049, 40000, tcpFlagACK, 0), true},
		{"nfs syn-ack", frame(protoTCP, gatewayIP4, 2049, 40000, tcpFlagSYN|tcpFlagACK, 0), true},
		{"nfs fin/rst", frame(protoTCP, gatewayIP4, 2049, 40000, 0x05, 0), true},
		{"guest syn from nfs port", frame(protoTCP, gatewayIP4, 2049, 22, tcpFlagSYN, 0), false},
		{"guest syn elsewhere", frame(protoTCP, elsewhere, 40000, 443, tcpFlagSYN, 0), false},
		{"nfs port to elsewhere", frame(protoTCP, elsewhere, 2049, 40000, tcpFlagACK, 0), false},
		{"other source port", frame(protoTCP, gatewayIP4, 2050, 40000, tcpFlagACK, 0), false},
		{"extra port reply", frame(protoTCP, gatewayIP4, 32767, 40000, tcpFlagACK, 0), true},
		{"guest syn from extra port", frame(protoTCP, gatewayIP4, 32767, 22, tcpFlagSYN, 0), false},
		{"dhcp broadcast", frame(protoUDP, broadcastIP4, 68, 67, 0, 0), true},
		{"dhcp to gateway", frame(protoUDP, gatewayIP4, 68, 67, 0, 0), true},
		{"udp 67 elsewhere", frame(protoUDP, elsewhere, 68, 67, 0, 0), false},
		{"dns", frame(protoUDP, gatewayIP4, 5353, 53, 0, 0), false},
		{"icmp", icmp, false},
		{"ipv6", ipv6, false},
		{"fragment", frame(protoTCP, gatewayIP4, 2049, 40000, tcpFlagACK, 0x2000), false},
		{"truncated ip", truncated, false},
		{"runt", make([]byte, 10), false},
	}
	for _, tt := range tests {
		if got := allowFromGuest(tt.frame, []uint16{2049, 32767}); got != tt.want {
			t.Errorf("%s: allowFromGuest = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzAllowFromGuest(f *testing.F) {
	f.Add(frame(protoTCP, gatewayIP4, 2049, 40000, tcpFlagACK, 0))
	f.Add(frame(protoUDP, broadcastIP4, 68, 67, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		allowFromGuest(b, []uint16{2049}) // must not panic on any input
	})
}
