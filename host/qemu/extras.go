package qemu

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// What the helper VMs need beyond a luksmount VM (the test's NFS client VM, the bench's kernel-nfsd
// VM, the agent tests): QEMU user networking with host forwards instead of gvproxy, extra
// virtio-serial ports, no control port, a control port QEMU listens on.

// UserNet is QEMU's built-in user-mode network (slirp). The guest reaches the host's loopback as
// Host (10.0.2.2 by default); Forwards expose guest TCP ports on the host.
type UserNet struct {
	// Net is the guest network in CIDR form and Host the host's address in it ("" = QEMU's
	// 10.0.2.0/24 and 10.0.2.2).
	Net, Host string
	Forwards  []Forward
}

// Forward is one hostfwd: connections to HostAddr:HostPort on the host go to GuestAddr:GuestPort.
type Forward struct {
	HostAddr  string // "" = 127.0.0.1 (never all interfaces by default)
	HostPort  int
	GuestAddr string // "" = the guest's DHCP address
	GuestPort int
}

// SerialPort is one extra virtio-serial port, named for the guest (/sys/class/virtio-ports).
// Exactly one of File and Socket is set.
type SerialPort struct {
	Name string
	// File captures what the guest writes to the port (results, logs).
	File string
	// Socket is a unix socket QEMU listens on (server=on,wait=off): the host connects to write
	// to the guest (a stop request) or read from it.
	Socket string
}

func (u *UserNet) validate() error {
	if u.Net != "" {
		p, err := netip.ParsePrefix(u.Net)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("user network %q is not an IPv4 CIDR", u.Net)
		}
		if h, err := netip.ParseAddr(u.Host); u.Host != "" && (err != nil || !p.Contains(h)) {
			return fmt.Errorf("user network host %q is not an address in %s", u.Host, u.Net)
		}
	} else if u.Host != "" {
		return fmt.Errorf("user network host %q set without its network", u.Host)
	}
	for _, f := range u.Forwards {
		if f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535 {
			return fmt.Errorf("forward %d -> %d: ports must be 1-65535", f.HostPort, f.GuestPort)
		}
		for _, a := range []string{f.HostAddr, f.GuestAddr} {
			if _, err := netip.ParseAddr(a); a != "" && err != nil {
				return fmt.Errorf("forward address %q is not an IP address", a)
			}
		}
	}
	return nil
}

func (u *UserNet) args(hostMTU string) []string {
	nd := "user,id=net0"
	if u.Net != "" {
		nd += ",net=" + u.Net
	}
	if u.Host != "" {
		nd += ",host=" + u.Host
	}
	for _, f := range u.Forwards {
		host := f.HostAddr
		if host == "" {
			host = "127.0.0.1"
		}
		nd += ",hostfwd=tcp:" + host + ":" + strconv.Itoa(f.HostPort) + "-" + f.GuestAddr + ":" + strconv.Itoa(f.GuestPort)
	}
	// romfile= as for the stream netdev: no iPXE ROM for a direct kernel boot.
	return []string{"-netdev", nd, "-device", "virtio-net-pci,netdev=net0,romfile=" + hostMTU}
}

func validateSerials(ports []SerialPort) error {
	seen := map[string]bool{}
	for _, p := range ports {
		if p.Name == "" || strings.ContainsAny(p.Name, ", \n") {
			return fmt.Errorf("serial port name %q is empty or has a comma or space", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("serial port %q named twice", p.Name)
		}
		seen[p.Name] = true
		if (p.File == "") == (p.Socket == "") {
			return fmt.Errorf("serial port %q needs exactly one of a file or a socket", p.Name)
		}
		if strings.ContainsAny(p.File+p.Socket, ",\n") {
			return fmt.Errorf("serial port %q path contains a comma or newline, which QEMU cannot take", p.Name)
		}
	}
	return nil
}

// serialArgs renders the extra ports on their own virtio-serial controller, so the control port's
// bus (vser0) is the same with or without them.
func serialArgs(ports []SerialPort) []string {
	if len(ports) == 0 {
		return nil
	}
	a := []string{"-device", "virtio-serial-pci,id=vser1"}
	for i, p := range ports {
		id := "port" + strconv.Itoa(i)
		if p.File != "" {
			a = append(a, "-chardev", "file,id="+id+",path="+p.File)
		} else {
			a = append(a, "-chardev", "socket,id="+id+",path="+p.Socket+",server=on,wait=off")
		}
		a = append(a, "-device", "virtserialport,bus=vser1.0,chardev="+id+",name="+p.Name)
	}
	return a
}

// validateExtras checks the helper-VM fields.
func (c *Config) validateExtras() error {
	if c.UserNet != nil {
		if c.NetSocket != "" {
			return invalid("both a gvproxy network socket and QEMU user networking are set; pick one")
		}
		if err := c.UserNet.validate(); err != nil {
			return invalid("%v", err)
		}
	}
	if c.NoControl && c.ControlServer {
		return invalid("a control port QEMU listens on was asked for with no control port")
	}
	if err := validateSerials(c.Serials); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// extraArgs renders the helper-VM fields (after the control port).
func (c *Config) extraArgs() []string {
	var a []string
	if c.UserNet != nil {
		a = append(a, c.UserNet.args(c.hostMTU())...)
	}
	return append(a, serialArgs(c.Serials)...)
}

// hostMTU is the virtio-net option offering NetMTU to the guest ("" = the driver's 1500). QEMU's
// user network (slirp) keeps its own 1500-byte MTU whatever the guest's (QEMU has no option for
// libslirp's if_mtu), so there it only changes what the guest offers.
func (c *Config) hostMTU() string {
	if c.NetMTU == 0 {
		return ""
	}
	return ",host_mtu=" + strconv.Itoa(c.NetMTU)
}

// controlServer is the control chardev's server option: QEMU connects to the host's socket,
// unless ControlServer asks it to listen.
func (c *Config) controlServer() string {
	if c.ControlServer {
		return "server=on,wait=off"
	}
	return "server=off"
}

// Quote renders a command line for logs and for pasting into a shell: each argument bare when
// it is made of safe characters, else in single quotes.
func Quote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+,.:/@%") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
