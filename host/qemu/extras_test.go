package qemu

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// helperVM is the shape of the test's NFS client VM and the bench's nfsd VM: no agent, user
// networking, result ports.
func helperVM() Config {
	return Config{
		Arch: ArchAMD64, Accel: AccelTCG, HostOS: "linux", MemoryMiB: 512, CPUs: 1,
		Kernel: "/img/vmlinuz", Initrd: "/w/initrd.img", ConsoleLog: "/w/console.log",
		NoControl: true,
	}
}

// after returns the arguments from the first occurrence of flag on (the tail of the line the
// fields below render), for comparisons that ignore the common head.
func after(args []string, first string) []string {
	if i := slices.Index(args, first); i >= 0 {
		return args[i:]
	}
	return nil
}

func TestArgsHelperVMs(t *testing.T) {
	rng := []string{"-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0"}
	tests := []struct {
		name string
		edit func(*Config)
		want []string // from the first -netdev/-device after the disks, up to the rng
	}{
		{"no network, no ports", func(c *Config) {}, nil},
		{"user net, QEMU's default network", func(c *Config) { c.UserNet = &UserNet{} },
			[]string{"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="}},
		{"user net, guest MTU 9000", func(c *Config) { c.UserNet, c.NetMTU = &UserNet{}, 9000 },
			[]string{"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile=,host_mtu=9000"}},
		{"user net with forwards on loopback", func(c *Config) {
			c.UserNet = &UserNet{Net: "192.168.127.0/24", Host: "192.168.127.1", Forwards: []Forward{
				{HostPort: 40000, GuestAddr: "192.168.127.2", GuestPort: 2049},
				{HostAddr: "127.0.0.2", HostPort: 40001, GuestPort: 20048},
			}}
		}, []string{"-netdev", "user,id=net0,net=192.168.127.0/24,host=192.168.127.1," +
			"hostfwd=tcp:127.0.0.1:40000-192.168.127.2:2049,hostfwd=tcp:127.0.0.2:40001-:20048",
			"-device", "virtio-net-pci,netdev=net0,romfile="}},
		{"result file and stop socket", func(c *Config) {
			c.Serials = []SerialPort{{Name: "org.test.results", File: "/w/results.out"}, {Name: "org.test.stop", Socket: "/w/stop.sock"}}
		}, []string{"-device", "virtio-serial-pci,id=vser1",
			"-chardev", "file,id=port0,path=/w/results.out",
			"-device", "virtserialport,bus=vser1.0,chardev=port0,name=org.test.results",
			"-chardev", "socket,id=port1,path=/w/stop.sock,server=on,wait=off",
			"-device", "virtserialport,bus=vser1.0,chardev=port1,name=org.test.stop"}},
		{"control port QEMU listens on, plus a port", func(c *Config) {
			c.NoControl, c.ControlServer, c.ControlSocket = false, true, "/w/ctl.sock"
			c.Serials = []SerialPort{{Name: "p", File: "/w/p.out"}}
		}, []string{"-device", "virtio-serial-pci,id=vser0",
			"-chardev", "socket,id=ctl,path=/w/ctl.sock,server=on,wait=off",
			"-device", "virtserialport,bus=vser0.0,chardev=ctl,name=org.luksmount.agent",
			"-device", "virtio-serial-pci,id=vser1",
			"-chardev", "file,id=port0,path=/w/p.out",
			"-device", "virtserialport,bus=vser1.0,chardev=port0,name=p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := helperVM()
			tc.edit(&c)
			got, err := c.Args()
			if err != nil {
				t.Fatal(err)
			}
			// The helper-VM fields render between the console and the rng device.
			head := []string{"-chardev", "file,id=console,path=/w/console.log", "-serial", "chardev:console"}
			tail := after(got, head[0])
			if !slices.Equal(tail[:len(head)], head) || !slices.Equal(tail[len(tail)-len(rng):], rng) {
				t.Fatalf("unexpected frame: %q", got)
			}
			if mid := tail[len(head) : len(tail)-len(rng)]; !slices.Equal(mid, tc.want) {
				t.Errorf("args:\n got %q\nwant %q", mid, tc.want)
			}
			if slices.Contains(got, "-kernel") && !strings.Contains(strings.Join(got, " "), "-append console=ttyS0 panic=-1 quiet cryptomgr.notests") {
				t.Errorf("kernel command line base missing: %q", got)
			}
		})
	}
}

func TestValidateHelperVMs(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"control port needed unless NoControl", func(c *Config) { c.NoControl = false }, "control socket path not set"},
		{"gvproxy and user net", func(c *Config) { c.NetSocket, c.UserNet = "/w/net.sock", &UserNet{} }, "pick one"},
		{"bad network", func(c *Config) { c.UserNet = &UserNet{Net: "10.0.2.0"} }, "not an IPv4 CIDR"},
		{"host outside network", func(c *Config) { c.UserNet = &UserNet{Net: "10.0.2.0/24", Host: "10.0.3.2"} }, "is not an address in"},
		{"host without network", func(c *Config) { c.UserNet = &UserNet{Host: "10.0.2.2"} }, "without its network"},
		{"port out of range", func(c *Config) { c.UserNet = &UserNet{Forwards: []Forward{{HostPort: 0, GuestPort: 2049}}} }, "ports must be 1-65535"},
		{"bad forward address", func(c *Config) {
			c.UserNet = &UserNet{Forwards: []Forward{{HostAddr: "localhost", HostPort: 1, GuestPort: 2}}}
		}, "not an IP address"},
		{"port with file and socket", func(c *Config) { c.Serials = []SerialPort{{Name: "p", File: "/a", Socket: "/b"}} }, "exactly one of"},
		{"port with neither", func(c *Config) { c.Serials = []SerialPort{{Name: "p"}} }, "exactly one of"},
		{"port named twice", func(c *Config) { c.Serials = []SerialPort{{Name: "p", File: "/a"}, {Name: "p", File: "/b"}} }, "named twice"},
		{"port name with comma", func(c *Config) { c.Serials = []SerialPort{{Name: "a,b", File: "/a"}} }, "has a comma"},
		{"port path with comma", func(c *Config) { c.Serials = []SerialPort{{Name: "p", File: "/a,b"}} }, "comma or newline"},
		{"listening control without control", func(c *Config) { c.ControlServer = true }, "no control port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := helperVM()
			tc.edit(&c)
			_, err := c.Args()
			if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Args() error = %v; want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	got := Quote([]string{"qemu-system-x86_64", "-append", "console=ttyS0 panic=-1", "-chardev", "file,id=c,path=/tmp/a b", "it's", ""})
	want := `qemu-system-x86_64 -append 'console=ttyS0 panic=-1' -chardev 'file,id=c,path=/tmp/a b' 'it'\''s' ''`
	if got != want {
		t.Errorf("Quote =\n %s\nwant\n %s", got, want)
	}
}
