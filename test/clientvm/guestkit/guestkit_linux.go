//go:build linux

// Package guestkit is what the PID 1 of every helper VM does around its job (the test's and the
// bench's NFS client VM, the bench's kernel-nfsd VM): base mounts and modules, JSON lines on a
// results port, QEMU user networking, the NFS mount, and powering off.
package guestkit

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/luksmount/luksmount/guest/channel"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/guest/netconf"
	"golang.org/x/sys/unix"
)

// Mnt is where the client VMs mount the export.
const Mnt = "/mnt/nfs"

// Port writes JSON lines to the results port and to the console (for a human reading a failed
// run). A Port that could not be opened writes to the console only.
type Port struct{ out *os.File }

// Boot does the base mounts and loads the image's modules, and opens the virtio-serial port
// named results.
func Boot(results string) (*Port, error) {
	p := &Port{}
	if err := initsys.MountBase(); err != nil {
		return p, fmt.Errorf("base mounts: %w", err)
	}
	p.open(results)
	if f, err := os.Open(initsys.ModulesFile); err == nil {
		paths, _ := initsys.ParseModules(f)
		f.Close()
		for _, m := range initsys.LoadModules(paths) {
			if m.Err != nil {
				fmt.Fprintf(os.Stderr, "module %s: %v\n", m.Path, m.Err)
			}
		}
	}
	p.open(results) // the port may only appear once virtio_console is loaded
	return p, nil
}

func (p *Port) open(name string) {
	if p.out != nil {
		return
	}
	if path, err := channel.FindPort("/sys/class/virtio-ports", name); err == nil {
		p.out, _ = os.OpenFile(path, os.O_WRONLY, 0)
	}
}

// Write sends v as one JSON line.
func (p *Port) Write(v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	if p.out != nil {
		p.out.Write(b)
	}
	os.Stderr.Write(b)
}

// PowerOff syncs, lets the port drain and powers the VM off. It does not return.
func (p *Port) PowerOff() {
	initsys.Sync()
	if p.out != nil {
		p.out.Sync()
	}
	time.Sleep(200 * time.Millisecond) // let the port drain before the power goes
	initsys.PowerOff()
	select {}
}

// Network configures loopback and QEMU user networking's fixed addresses (10.0.2.15/24, the
// host's loopback as 10.0.2.2).
func Network() error {
	if err := netconf.Loopback(); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if err := netconf.Configure(netconf.UserNet(), 2*time.Second); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// MountNFS mounts server:export on Mnt with the kernel's NFS client and the given text mount data.
func MountNFS(server, export, data string) error {
	if err := os.MkdirAll(Mnt, 0o755); err != nil {
		return err
	}
	src := server + ":" + export
	if err := unix.Mount(src, Mnt, "nfs", 0, data); err != nil {
		return fmt.Errorf("mount -t nfs %s %s -o %s: %w", src, Mnt, data, err)
	}
	return nil
}

// UnmountNFS unmounts Mnt.
func UnmountNFS() error {
	if err := unix.Unmount(Mnt, 0); err != nil {
		return fmt.Errorf("umount %s: %w", Mnt, err)
	}
	return nil
}
