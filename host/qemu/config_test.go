package qemu

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func base(arch Arch, accel Accel, hostOS string) Config {
	return Config{
		Arch: arch, Accel: accel, HostOS: hostOS,
		MemoryMiB: 512, CPUs: 1,
		Kernel: "/img/vmlinuz", Initrd: "/img/initramfs.cpio.lz4", Cmdline: "luksmount.debug=1",
		Disks:         []Disk{{Path: "/tmp/disk.img"}},
		ControlSocket: "/run/lm/control.sock",
		NetSocket:     "/run/lm/net.sock",
		QMPSocket:     "/run/lm/qmp.sock",
		ConsoleLog:    "/run/lm/console.log",
		PidFile:       "/run/lm/qemu.pid",
	}
}

// The complete command line for the common case, so any change to it shows up in review.
func TestArgsTCGAMD64Full(t *testing.T) {
	c := base(ArchAMD64, AccelTCG, "linux")
	got, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-M", "q35,i8042=off,sata=off,smbus=off,vmport=off,usb=off,graphics=off,smm=off", "-accel", "tcg", "-cpu", "max",
		"-smp", "1", "-m", "512",
		"-kernel", "/img/vmlinuz", "-initrd", "/img/initramfs.cpio.lz4",
		"-append", "console=ttyS0 panic=-1 quiet cryptomgr.notests nowatchdog no_timer_check tsc=reliable luksmount.debug=1",
		"-chardev", "file,id=console,path=/run/lm/console.log", "-serial", "chardev:console",
		"-blockdev", "driver=file,node-name=disk0-file,filename=/tmp/disk.img,read-only=off,cache.direct=off,cache.no-flush=off",
		"-blockdev", "driver=raw,node-name=disk0,file=disk0-file,read-only=off",
		"-device", "virtio-blk-pci,drive=disk0,id=disk0-dev,write-cache=on,werror=report,rerror=report,logical_block_size=512,physical_block_size=512",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=ctl,path=/run/lm/control.sock,server=off",
		"-device", "virtserialport,bus=vser0.0,chardev=ctl,name=org.luksmount.agent",
		"-netdev", "stream,id=net0,server=off,addr.type=unix,addr.path=/run/lm/net.sock",
		"-device", "virtio-net-pci,netdev=net0,mac=5a:94:ef:e4:0c:ee,romfile=",
		"-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0",
		"-chardev", "socket,id=qmp,path=/run/lm/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
		"-pidfile", "/run/lm/qemu.pid",
	}
	if !slices.Equal(got, want) {
		t.Errorf("args:\n got %q\nwant %q", got, want)
	}
	if c.Binary() != "qemu-system-x86_64" {
		t.Errorf("binary %q", c.Binary())
	}
}

func TestArgsShapes(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func() Config
		binary   string
		want     [][]string // each must appear as a contiguous run
		wantNot  []string   // substrings no argument may contain
		cmdlineH string     // prefix of -append
	}{
		{
			name:   "hvf arm64",
			cfg:    func() Config { return base(ArchARM64, AccelHVF, "darwin") },
			binary: "qemu-system-aarch64",
			want:   [][]string{{"-M", "virt,accel=hvf", "-cpu", "host"}},
			// macOS has no O_DIRECT and no vsock; nothing may ask for them.
			wantNot:  []string{"cache.direct=on", "vsock", "-accel"},
			cmdlineH: "console=ttyAMA0 panic=-1 quiet cryptomgr.notests nowatchdog",
		},
		{
			name:     "hvf amd64",
			cfg:      func() Config { return base(ArchAMD64, AccelHVF, "darwin") },
			binary:   "qemu-system-x86_64",
			want:     [][]string{{"-M", q35, "-accel", "hvf", "-cpu", "host"}},
			wantNot:  []string{"cache.direct=on"},
			cmdlineH: "console=ttyS0 ",
		},
		{
			name:     "kvm amd64",
			cfg:      func() Config { return base(ArchAMD64, AccelKVM, "linux") },
			binary:   "qemu-system-x86_64",
			want:     [][]string{{"-M", q35, "-accel", "kvm", "-cpu", "host"}},
			cmdlineH: "console=ttyS0 ",
		},
		{
			name:     "kvm arm64",
			cfg:      func() Config { return base(ArchARM64, AccelKVM, "linux") },
			binary:   "qemu-system-aarch64",
			want:     [][]string{{"-M", "virt", "-accel", "kvm", "-cpu", "host"}},
			cmdlineH: "console=ttyAMA0 ",
		},
		{
			name: "tcg amd64 smp",
			cfg: func() Config {
				c := base(ArchAMD64, AccelTCG, "linux")
				c.CPUs = 2
				return c
			},
			binary: "qemu-system-x86_64",
			want:   [][]string{{"-M", q35, "-accel", "tcg,thread=multi", "-cpu", "max"}, {"-smp", "2"}},
		},
		{
			name:    "tcg arm64",
			cfg:     func() Config { return base(ArchARM64, AccelTCG, "linux") },
			binary:  "qemu-system-aarch64",
			want:    [][]string{{"-M", "virt", "-accel", "tcg", "-cpu", "max,pauth=off"}, {"-smp", "1"}},
			wantNot: []string{"thread=multi"},
		},
		{
			name: "tcg arm64 on mac",
			cfg: func() Config {
				c := base(ArchARM64, AccelTCG, "darwin")
				c.CPUs = 4
				return c
			},
			binary: "qemu-system-aarch64",
			want:   [][]string{{"-M", "virt", "-accel", "tcg,thread=multi", "-cpu", "max,pauth=off"}},
		},
		{
			name: "4Kn host device on linux",
			cfg: func() Config {
				c := base(ArchAMD64, AccelKVM, "linux")
				c.Disks = []Disk{{Path: "/dev/sdb", HostDevice: true, LogicalBlockSize: 4096, PhysicalBlockSize: 4096, Serial: "WD-1234"}}
				return c
			},
			want: [][]string{
				{"-blockdev", "driver=host_device,node-name=disk0-file,filename=/dev/sdb,read-only=off,cache.direct=on,cache.no-flush=off"},
				{"-device", "virtio-blk-pci,drive=disk0,id=disk0-dev,write-cache=on,werror=report,rerror=report,logical_block_size=4096,physical_block_size=4096,serial=WD-1234"},
			},
		},
		{
			name: "512e host device on mac",
			cfg: func() Config {
				c := base(ArchARM64, AccelHVF, "darwin")
				c.Disks = []Disk{{Path: "/dev/rdisk4", HostDevice: true, LogicalBlockSize: 512, PhysicalBlockSize: 4096}}
				return c
			},
			want: [][]string{
				{"-blockdev", "driver=host_device,node-name=disk0-file,filename=/dev/rdisk4,read-only=off,cache.direct=off,cache.no-flush=off,locking=off"},
				{"-device", "virtio-blk-pci,drive=disk0,id=disk0-dev,write-cache=on,werror=report,rerror=report,logical_block_size=512,physical_block_size=4096"},
			},
		},
		{
			name: "fdset disk",
			cfg: func() Config {
				c := base(ArchAMD64, AccelTCG, "linux")
				c.Disks = []Disk{{Path: "/tmp/a.img"}, {Path: "/dev/sdc", FD: 4, HostDevice: true}}
				return c
			},
			want: [][]string{
				{"-blockdev", "driver=file,node-name=disk0-file,filename=/tmp/a.img,read-only=off,cache.direct=off,cache.no-flush=off"},
				{"-add-fd", "fd=4,set=2", "-blockdev", "driver=host_device,node-name=disk1-file,filename=/dev/fdset/2,read-only=off,cache.direct=on,cache.no-flush=off"},
				{"-blockdev", "driver=raw,node-name=disk1,file=disk1-file,read-only=off"},
			},
			wantNot: []string{"/dev/sdc"},
		},
		{
			name: "read-only disk",
			cfg: func() Config {
				c := base(ArchAMD64, AccelTCG, "linux")
				c.Disks[0].ReadOnly = true
				return c
			},
			want: [][]string{
				{"-blockdev", "driver=file,node-name=disk0-file,filename=/tmp/disk.img,read-only=on,cache.direct=off,cache.no-flush=off"},
				{"-blockdev", "driver=raw,node-name=disk0,file=disk0-file,read-only=on"},
			},
		},
		{
			name: "vsock",
			cfg: func() Config {
				c := base(ArchAMD64, AccelKVM, "linux")
				c.VsockCID = 42
				return c
			},
			want: [][]string{{"-device", "vhost-vsock-pci,guest-cid=42"}},
		},
		{
			name: "no net, no qmp, no pidfile, custom mac ignored",
			cfg: func() Config {
				c := base(ArchAMD64, AccelTCG, "linux")
				c.NetSocket, c.QMPSocket, c.PidFile, c.Cmdline = "", "", "", ""
				return c
			},
			wantNot:  []string{"-netdev", "virtio-net", "-mon", "-pidfile", "vsock"},
			cmdlineH: "console=ttyS0 panic=-1 quiet cryptomgr.notests nowatchdog no_timer_check tsc=reliable",
		},
		{
			name: "custom mac",
			cfg: func() Config {
				c := base(ArchAMD64, AccelTCG, "linux")
				c.MAC = "52:54:00:AB:CD:EF"
				return c
			},
			want: [][]string{{"-device", "virtio-net-pci,netdev=net0,mac=52:54:00:ab:cd:ef,romfile="}},
		},
		{
			name: "jumbo MTU offered through host_mtu",
			cfg: func() Config {
				c := base(ArchAMD64, AccelTCG, "linux")
				c.NetMTU = 65520
				return c
			},
			want: [][]string{{"-device", "virtio-net-pci,netdev=net0,mac=5a:94:ef:e4:0c:ee,romfile=,host_mtu=65520"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg()
			args, err := c.Args()
			if err != nil {
				t.Fatal(err)
			}
			if tt.binary != "" && c.Binary() != tt.binary {
				t.Errorf("binary = %q, want %q", c.Binary(), tt.binary)
			}
			for _, w := range tt.want {
				if !containsRun(args, w) {
					t.Errorf("missing %q in\n%q", w, args)
				}
			}
			for _, n := range tt.wantNot {
				for _, a := range args {
					if strings.Contains(a, n) {
						t.Errorf("argument %q contains %q", a, n)
					}
				}
			}
			if tt.cmdlineH != "" {
				i := slices.Index(args, "-append")
				if i < 0 || !strings.HasPrefix(args[i+1], tt.cmdlineH) {
					t.Errorf("-append %q does not start with %q", args[i+1], tt.cmdlineH)
				}
				if tt.cmdlineH == strings.TrimSpace(tt.cmdlineH) && c.Cmdline == "" && args[i+1] != tt.cmdlineH {
					t.Errorf("-append = %q, want exactly %q", args[i+1], tt.cmdlineH)
				}
			}
		})
	}
}

func containsRun(args, run []string) bool {
	for i := 0; i+len(run) <= len(args); i++ {
		if slices.Equal(args[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"missing kernel", func(c *Config) { c.Kernel = "" }, "kernel image not set"},
		{"missing initrd", func(c *Config) { c.Initrd = "" }, "initramfs not set"},
		{"missing console", func(c *Config) { c.ConsoleLog = "" }, "console log path not set"},
		{"missing control", func(c *Config) { c.ControlSocket = "" }, "control socket path not set"},
		{"hvf on linux", func(c *Config) { c.Accel = AccelHVF }, "accelerator hvf needs macOS"},
		{"kvm on darwin", func(c *Config) { c.HostOS = "darwin"; c.Accel = AccelKVM }, "accelerator kvm needs Linux"},
		{"no accel", func(c *Config) { c.Accel = "" }, "accelerator not set"},
		{"bad accel", func(c *Config) { c.Accel = "xen" }, `unknown accelerator "xen"`},
		{"bad arch", func(c *Config) { c.Arch = "riscv64" }, `unsupported guest architecture "riscv64"`},
		{"no arch", func(c *Config) { c.Arch = "" }, "guest architecture not set"},
		{"bad host", func(c *Config) { c.HostOS = "windows" }, `unsupported host OS "windows"`},
		{"tiny memory", func(c *Config) { c.MemoryMiB = 16 }, "16 MiB of guest memory is too little"},
		{"too many cpus", func(c *Config) { c.CPUs = 1000 }, "1000 vCPUs"},
		{"comma in path", func(c *Config) { c.ConsoleLog = "/tmp/a,b.log" }, "contains a comma"},
		{"bad mac", func(c *Config) { c.MAC = "zz" }, `bad MAC address "zz"`},
		{"tiny mtu", func(c *Config) { c.NetMTU = 100 }, "network MTU 100 is out of range"},
		{"vsock on mac", func(c *Config) { c.HostOS = "darwin"; c.Accel = AccelTCG; c.VsockCID = 3 }, "vsock needs a Linux host"},
		{"vsock reserved cid", func(c *Config) { c.VsockCID = 2 }, "vsock CID 2 is reserved"},
		{"disk without path", func(c *Config) { c.Disks[0].Path = "" }, "disk 0 (): path not set"},
		{"512 logical on 4k? no: bad logical", func(c *Config) { c.Disks[0].LogicalBlockSize = 1000 }, "logical block size 1000"},
		{"physical smaller than logical", func(c *Config) {
			c.Disks[0].LogicalBlockSize, c.Disks[0].PhysicalBlockSize = 4096, 512
		}, "physical block size 512"},
		{"fd is stdio", func(c *Config) { c.Disks[0].FD = 1 }, "descriptor 1 is stdin/stdout/stderr"},
		{"device fd on mac", func(c *Config) {
			c.HostOS = "darwin"
			c.Accel = AccelTCG
			c.Disks[0].FD, c.Disks[0].HostDevice = 3, true
		}, "cannot take a disk device as an open descriptor on macOS"},
		{"run as root", func(c *Config) { c.RunAs = &RunAs{UID: 0, GID: 0} }, "run-as uid 0 drops nothing"},
		{"fd twice", func(c *Config) {
			c.Disks = []Disk{{Path: "/a", FD: 3}, {Path: "/b", FD: 3}}
		}, "descriptor 3 used twice"},
		{"long serial", func(c *Config) { c.Disks[0].Serial = strings.Repeat("x", 21) }, "longer than 20 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base(ArchAMD64, AccelKVM, "linux")
			tt.modify(&c)
			_, err := c.Args()
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %q does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestParseAccel(t *testing.T) {
	for in, want := range map[string]Accel{"hvf": AccelHVF, "KVM": AccelKVM, " tcg ": AccelTCG} {
		if got, err := ParseAccel(in); err != nil || got != want {
			t.Errorf("ParseAccel(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseAccel("whpx"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseAccel(whpx) error = %v", err)
	}
}

func TestMemoryForKDF(t *testing.T) {
	tests := []struct {
		kdf  int64
		want int
	}{
		{0, PlainMemoryMiB},
		{-1, PlainMemoryMiB},
		{64, 256},
		{1024, 1024 + kdfMarginMiB},
		{4096, 4096 + kdfMarginMiB},
	}
	for _, tt := range tests {
		got := MemoryForKDF(tt.kdf)
		if got != tt.want {
			t.Errorf("MemoryForKDF(%d) = %d, want %d", tt.kdf, got, tt.want)
		}
		if got%64 != 0 || int64(got) < tt.kdf+kdfMarginMiB && tt.kdf > 0 {
			t.Errorf("MemoryForKDF(%d) = %d: not a 64 MiB multiple covering the KDF and margin", tt.kdf, got)
		}
	}
}
