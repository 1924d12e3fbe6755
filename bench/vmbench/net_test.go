package vmbench

import (
	"os"
	"testing"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vnet"
)

// Both paths give the server the same guest ports at the same MTU; only the host side differs.
func TestNetAttach(t *testing.T) {
	dir, err := os.MkdirTemp("", "lmb")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	on := true
	for _, n := range []Net{{MTU: 9000, Batch: &on}, {User: true, MTU: 9000}} {
		var qc qemu.Config
		ports, vn, err := n.attach(&qc, dir, 2049, 32767, 5201)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || qc.NetMTU != 9000 {
			t.Errorf("%s: host ports %v, MTU %d", n.Name(), ports, qc.NetMTU)
		}
		if n.User {
			if vn != nil || qc.NetSocket != "" || qc.UserNet == nil || len(qc.UserNet.Forwards) != 3 ||
				qc.UserNet.Forwards[2].GuestAddr != vnet.GuestIP || qc.UserNet.Forwards[2].GuestPort != 5201 || qc.UserNet.Host != vnet.GatewayIP {
				t.Errorf("user net: %+v", qc.UserNet)
			}
			if n.Name() != "user net mtu 9000" {
				t.Errorf("name %q", n.Name())
			}
		} else {
			if vn == nil || qc.NetSocket == "" || qc.UserNet != nil || vn.ForwardAddr(5201).Port != ports[2] {
				t.Errorf("vnet: socket %q, user %v", qc.NetSocket, qc.UserNet)
			}
			if n.Name() != "vnet mtu 9000 batched" {
				t.Errorf("name %q", n.Name())
			}
			vn.Close()
		}
	}
}
