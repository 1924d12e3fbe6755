package netconf

import "testing"

func TestDefaultIsGvproxySubnet(t *testing.T) {
	c := Default()
	if c.Interface != "eth0" || c.Address.String() != "192.168.127.2/24" || c.Gateway.String() != "192.168.127.1" {
		t.Fatalf("Default = %s %s via %s; want eth0 192.168.127.2/24 via 192.168.127.1", c.Interface, c.Address, c.Gateway)
	}
	if !c.Address.Contains(c.Gateway) {
		t.Fatal("gateway outside the subnet")
	}
}
