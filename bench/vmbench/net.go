package vmbench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vnet"
)

// Net is the network path between the host and a server VM.
type Net struct {
	// User selects QEMU's user network (slirp, hostfwd on 127.0.0.1) instead of host/vnet
	// (gvproxy in this process, a 127.0.0.1 forward), which is what the product uses.
	User bool `json:"user"`
	// MTU is the guest link's MTU, offered through virtio-net host_mtu (0 = vnet.DefaultMTU).
	MTU int `json:"mtu"`
	// Batch sets host/vnet's write coalescing (nil = vnet.DefaultBatch; no effect on user net).
	Batch *bool `json:"batch,omitempty"`
}

// Name is "vnet" or "user net", with the MTU.
func (n Net) Name() string {
	s := "vnet"
	if n.User {
		s = "user net"
	}
	s += " mtu " + strconv.Itoa(n.mtu())
	if !n.User && n.Batch != nil {
		s += map[bool]string{true: " batched", false: " unbatched"}[*n.Batch]
	}
	return s
}

func (n Net) mtu() int {
	if n.MTU == 0 {
		return vnet.DefaultMTU
	}
	return n.MTU
}

// serverNet is the user network the server VMs get: the same addresses as host/vnet's, so one
// guest configuration runs behind either path.
func serverNet(ports ...int) (*qemu.UserNet, []int, error) {
	u := &qemu.UserNet{Net: vnet.Subnet, Host: vnet.GatewayIP}
	var host []int
	for _, p := range ports {
		hp, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		u.Forwards = append(u.Forwards, qemu.Forward{HostPort: hp, GuestAddr: vnet.GuestIP, GuestPort: p})
		host = append(host, hp)
	}
	return u, host, nil
}

// attach gives qc the network n for guest ports (the first is the main one) and returns the
// host ports they are reached on, and the vnet to close after the VM (nil on user net).
func (n Net) attach(qc *qemu.Config, dir string, ports ...int) ([]int, *vnet.Network, error) {
	qc.NetMTU = n.mtu()
	if n.User {
		u, host, err := serverNet(ports...)
		qc.UserNet = u
		return host, nil, err
	}
	qc.NetSocket = filepath.Join(dir, "net.sock")
	vn, err := vnet.Start(vnet.Config{SocketPath: qc.NetSocket, GuestPort: ports[0], ExtraPorts: ports[1:], MTU: n.mtu(), Batch: n.Batch})
	if err != nil {
		return nil, nil, err
	}
	var host []int
	for _, p := range ports {
		host = append(host, vn.ForwardAddr(p).Port)
	}
	return host, vn, nil
}

// StreamResult is one direction of a TCP stream through a path.
type StreamResult struct {
	Path      string  `json:"path"`
	Direction string  `json:"direction"` // host->guest or guest->host
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	MBps      float64 `json:"mbps"`
}

// Stream measures host->guest and guest->host on the guest's stream server at addr.
func Stream(addr string, size int64, limit time.Duration) (up, down StreamResult, err error) {
	up.Direction, down.Direction = "host->guest", "guest->host"
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return up, down, err
	}
	c.SetDeadline(time.Now().Add(limit))
	buf := make([]byte, 256<<10)
	t := time.Now()
	if _, err := c.Write([]byte{'W'}); err != nil {
		c.Close()
		return up, down, err
	}
	for left := size; left > 0; {
		n, err := c.Write(buf[:min(left, int64(len(buf)))])
		if err != nil {
			c.Close()
			return up, down, fmt.Errorf("host->guest: %w", err)
		}
		left -= int64(n)
	}
	c.(*net.TCPConn).CloseWrite()
	var cnt [8]byte
	_, err = io.ReadFull(c, cnt[:])
	c.Close()
	if err != nil {
		return up, down, fmt.Errorf("host->guest: no count back: %w", err)
	}
	if got := int64(binary.BigEndian.Uint64(cnt[:])); got != size {
		return up, down, fmt.Errorf("host->guest: the guest read %d of %d bytes", got, size)
	}
	up.Bytes, up.Seconds = size, time.Since(t).Seconds()

	c, err = net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return up, down, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	t = time.Now()
	if _, err := c.Write(binary.BigEndian.AppendUint64([]byte{'R'}, uint64(size))); err != nil {
		return up, down, err
	}
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
	if err != nil || n != size {
		return up, down, fmt.Errorf("guest->host: %d of %d bytes (%v)", n, size, err)
	}
	down.Bytes, down.Seconds = size, time.Since(t).Seconds()
	for _, r := range []*StreamResult{&up, &down} {
		r.MBps = float64(r.Bytes) / r.Seconds / 1e6
	}
	return up, down, nil
}

// NetPath boots the nfsd image in network-only mode behind n and streams size bytes each way.
func NetPath(ctx context.Context, im Images, dir string, m Machine, n Net, size int64) (up, down StreamResult, err error) {
	os.RemoveAll(dir)
	s, err := StartNFSD(ctx, im, NFSDSpec{Dir: dir, Machine: m, Net: n, Config: guestspec.Config{Mode: guestspec.ModeNet}})
	if err != nil {
		return up, down, err
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	_, err = s.WaitReady(rctx)
	cancel()
	if err == nil {
		up, down, err = Stream(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.StreamPort)), size, 5*time.Minute)
	}
	up.Path, down.Path = n.Name(), n.Name()
	if _, serr := s.Stop(ctx); serr != nil && err == nil {
		err = serr
	}
	return up, down, err
}
