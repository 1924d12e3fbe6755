// Package qemu describes one luksmount VM as a typed Config and renders the QEMU command line for
// it. It runs nothing: host/vm starts the process. Everything here is platform-neutral so the
// argument shapes for macOS (HVF) are tested on Linux too.
package qemu

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/pkg/control"
)

// Arch is a guest (and host) CPU architecture, spelled like GOARCH.
type Arch string

// Supported architectures.
const (
	ArchAMD64 Arch = "amd64"
	ArchARM64 Arch = "arm64"
)

// Accel is a QEMU accelerator.
type Accel string

// Accelerators.
const (
	AccelHVF Accel = "hvf" // Hypervisor.framework (macOS)
	AccelKVM Accel = "kvm" // Linux KVM
	AccelTCG Accel = "tcg" // software emulation: works everywhere, slowly
)

// ParseAccel checks a user-supplied accelerator name.
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(strings.ToLower(strings.TrimSpace(s))); a {
	case AccelHVF, AccelKVM, AccelTCG:
		return a, nil
	}
	return "", fmt.Errorf("%w: unknown accelerator %q; use hvf, kvm or tcg", ErrInvalidConfig, s)
}

// GuestMAC is the guest NIC's MAC address; host/vnet gives it a static DHCP lease.
const GuestMAC = "5a:94:ef:e4:0c:ee"

// Config is one VM. Zero values mean "the sensible default" where one exists.
type Config struct {
	Arch   Arch   // guest architecture; must match the host's for hvf/kvm
	Accel  Accel  // hvf, kvm or tcg
	HostOS string // GOOS of the machine QEMU runs on: darwin or linux

	MemoryMiB int // guest RAM (see MemoryForKDF)
	CPUs      int // vCPUs; 0 = 1

	Kernel  string // vmlinuz (direct kernel boot, no firmware)
	Initrd  string // initramfs.cpio.lz4
	Cmdline string // appended to the base kernel command line

	Disks []Disk // presented in order as /dev/vda, /dev/vdb, ...

	ControlSocket string // unix socket the host listens on; QEMU connects the control port to it
	NetSocket     string // unix socket gvproxy listens on; QEMU connects its stream netdev to it
	MAC           string // guest NIC MAC; "" = GuestMAC
	// NetMTU, if set, is offered to the guest through virtio-net's host_mtu (VIRTIO_NET_F_MTU: the
	// guest driver starts the link at it, no guest configuration needed). host/vnet's MTU.
	NetMTU    int
	QMPSocket string // unix socket QEMU listens on for QMP ("" = no QMP)
	// EventSocket is a second QMP monitor that host/vm keeps connected to read events
	// (BLOCK_IO_ERROR) while QMPSocket stays free for commands ("" = none).
	EventSocket string
	ConsoleLog  string // serial console output file (required: it is how boot failures are explained)
	PidFile     string // "" = none

	VsockCID uint32 // vhost-vsock guest CID; 0 = no vsock device (Linux hosts only)

	// Helper VMs (tests, bench; see extras.go).
	UserNet       *UserNet     // QEMU user networking with host forwards, instead of NetSocket
	Serials       []SerialPort // extra virtio-serial ports
	NoControl     bool         // no control port (VMs without the agent)
	ControlServer bool         // QEMU listens on ControlSocket and the host dials (it may go and come back)

	// RunAs, if set, has QEMU drop root itself once the disks are open (-run-with user=): how QEMU
	// runs unprivileged on macOS (see RunAs and DiskFDWorks).
	RunAs *RunAs
}

// Disk is one raw disk presented to the guest as virtio-blk.
type Disk struct {
	// Path is the file or device. With FD set it is only used in messages.
	Path string
	// FD, when non-zero, is the descriptor number QEMU inherits with the disk already open (with
	// exec.Cmd that is 3+i for ExtraFiles[i]). QEMU then opens /dev/fdset/N instead of Path, so it
	// can run without the right to open the device (Linux). Its access mode must match ReadOnly.
	FD int
	// HostDevice says Path is a block or character device rather than a regular file. QEMU needs
	// the host_device driver for those, and luksmount bypasses the host page cache for them on Linux.
	HostDevice bool
	ReadOnly   bool
	// LogicalBlockSize and PhysicalBlockSize are the drive's real sizes in bytes (0 = 512). A 4Kn
	// drive presented with 512-byte sectors can end up with a filesystem that only works that way.
	LogicalBlockSize  int
	PhysicalBlockSize int
	Serial            string // virtio-blk serial (at most 20 bytes), shows up as /sys/block/vdX/serial
	// Discard passes the guest's TRIM to the file or device (discard=unmap): opt-in, see discardOpt.
	Discard bool
}

// ErrInvalidConfig is wrapped by every validation error, for callers that branch on it.
var ErrInvalidConfig = errors.New("invalid VM configuration")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// Binary is the QEMU system emulator for c.Arch.
func (c *Config) Binary() string { return BinaryFor(c.Arch) }

// BinaryFor names the QEMU system emulator for a guest architecture.
func BinaryFor(a Arch) string {
	if a == ArchARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// Validate reports the first problem in c as a one-line error wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	switch c.Arch {
	case ArchAMD64, ArchARM64:
	case "":
		return invalid("guest architecture not set")
	default:
		return invalid("unsupported guest architecture %q; use amd64 or arm64", c.Arch)
	}
	switch c.HostOS {
	case "darwin", "linux":
	default:
		return invalid("unsupported host OS %q; luksmount runs QEMU on darwin or linux", c.HostOS)
	}
	switch c.Accel {
	case AccelTCG:
	case AccelHVF:
		if c.HostOS != "darwin" {
			return invalid("accelerator hvf needs macOS; on %s use kvm or tcg", c.HostOS)
		}
	case AccelKVM:
		if c.HostOS != "linux" {
			return invalid("accelerator kvm needs Linux; on %s use hvf or tcg", c.HostOS)
		}
	case "":
		return invalid("accelerator not set")
	default:
		return invalid("unknown accelerator %q; use hvf, kvm or tcg", c.Accel)
	}
	if c.MemoryMiB < 64 {
		return invalid("%d MiB of guest memory is too little; the guest needs at least 64", c.MemoryMiB)
	}
	if c.CPUs < 0 || c.CPUs > 64 {
		return invalid("%d vCPUs is out of range 1-64", c.CPUs)
	}
	if c.Kernel == "" {
		return invalid("kernel image not set")
	}
	if c.Initrd == "" {
		return invalid("initramfs not set")
	}
	if c.ConsoleLog == "" {
		return invalid("console log path not set")
	}
	if c.ControlSocket == "" && !c.NoControl {
		return invalid("control socket path not set")
	}
	for name, v := range map[string]string{"kernel": c.Kernel, "initramfs": c.Initrd, "console log": c.ConsoleLog,
		"control socket": c.ControlSocket, "network socket": c.NetSocket, "QMP socket": c.QMPSocket, "QMP event socket": c.EventSocket, "pid file": c.PidFile} {
		// QEMU's option parser splits on commas; doubling them works for some options but not all.
		if strings.ContainsAny(v, ",\n") {
			return invalid("%s path %q contains a comma or newline, which QEMU cannot take", name, v)
		}
	}
	if c.NetMTU != 0 && (c.NetMTU < 576 || c.NetMTU > 65535) {
		return invalid("network MTU %d is out of range 576-65535", c.NetMTU)
	}
	if c.MAC != "" {
		hw, err := net.ParseMAC(c.MAC)
		if err != nil || len(hw) != 6 {
			return invalid("bad MAC address %q", c.MAC)
		}
	}
	if c.VsockCID != 0 {
		if c.HostOS != "linux" {
			return invalid("vsock needs a Linux host (vhost-vsock); QEMU on %s has none", c.HostOS)
		}
		if c.VsockCID < 3 {
			return invalid("vsock CID %d is reserved; use 3 or more", c.VsockCID)
		}
	}
	if err := c.RunAs.validate(); err != nil {
		return invalid("%v", err)
	}
	fds := map[int]bool{}
	for i, d := range c.Disks {
		if err := d.validate(c.HostOS); err != nil {
			return invalid("disk %d (%s): %v", i, d.Path, err)
		}
		if d.FD != 0 {
			if fds[d.FD] {
				return invalid("disk %d (%s): descriptor %d used twice", i, d.Path, d.FD)
			}
			fds[d.FD] = true
		}
	}
	return c.validateExtras()
}

func (d *Disk) validate(hostOS string) error {
	if d.Path == "" {
		return errors.New("path not set")
	}
	if strings.ContainsAny(d.Path, ",\n") && d.FD == 0 {
		return errors.New("path contains a comma or newline, which QEMU cannot take")
	}
	if d.FD != 0 && d.FD < 3 {
		return fmt.Errorf("descriptor %d is stdin/stdout/stderr", d.FD)
	}
	if d.FD != 0 && !DiskFDWorks(hostOS, d.HostDevice) {
		return errors.New("QEMU cannot take a disk device as an open descriptor on macOS (its F_SETFL on the copy fails with ENOTTY); use RunAs")
	}
	l, p := d.blockSizes()
	if !validBlockSize(l) {
		return fmt.Errorf("logical block size %d is not a power of two between 512 and 32768", l)
	}
	if !validBlockSize(p) || p < l {
		return fmt.Errorf("physical block size %d is not a power of two between the logical size %d and 32768", p, l)
	}
	if len(d.Serial) > 20 || strings.ContainsAny(d.Serial, ",\n") {
		return fmt.Errorf("serial %q is longer than 20 bytes or has a comma", d.Serial)
	}
	return nil
}

func validBlockSize(n int) bool { return n >= 512 && n <= 32768 && n&(n-1) == 0 }

func (d *Disk) blockSizes() (logical, physical int) {
	logical, physical = d.LogicalBlockSize, d.PhysicalBlockSize
	if logical == 0 {
		logical = 512
	}
	if physical == 0 {
		physical = logical
	}
	return logical, physical
}

// consoleDevice is the guest's serial console for the machine type luksmount uses.
func (c *Config) consoleDevice() string {
	if c.Arch == ArchARM64 {
		return "ttyAMA0" // PL011 on virt
	}
	return "ttyS0"
}

// KernelCmdline is the full guest kernel command line.
func (c *Config) KernelCmdline() string {
	// panic=-1 turns a guest crash into a QEMU exit (with -no-reboot); cryptomgr.notests skips
	// self-tests that cost ~0.3 s under TCG.
	// nowatchdog: no soft/hard lockup detector, whose timer woke an idle guest every 4 s (and
	// which a loaded TCG host trips for nothing).
	s := "console=" + c.consoleDevice() + " panic=-1 quiet cryptomgr.notests nowatchdog"
	if c.Arch == ArchAMD64 {
		// A slow (TCG, loaded) host can fail the kernel's IO-APIC timer check, which panics at
		// boot; the check only guards against broken hardware timers QEMU does not have.
		// tsc=reliable: QEMU's TSC is the host's, so the clocksource watchdog (a timer every
		// 0.5 s, and a switch to the slow HPET when a loaded host delays it) is not needed.
		s += " no_timer_check tsc=reliable"
	}
	if extra := strings.TrimSpace(c.Cmdline); extra != "" {
		s += " " + extra
	}
	return s
}

// Args renders the QEMU arguments (without the binary). It validates c first.
func (c *Config) Args() ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cpus := c.CPUs
	if cpus == 0 {
		cpus = 1
	}
	var a []string
	add := func(s ...string) { a = append(a, s...) }

	add("-nodefaults", "-no-user-config", "-nographic", "-no-reboot")
	add(c.machineArgs(cpus)...)
	add("-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(c.MemoryMiB))
	add("-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.KernelCmdline())
	add("-chardev", "file,id=console,path="+c.ConsoleLog, "-serial", "chardev:console")

	for i, d := range c.Disks {
		add(c.diskArgs(i, d)...)
	}

	// Control port: the host listens (in its private runtime directory) and QEMU connects at
	// startup, so the socket's owner and mode are the host's and there is nothing to poll for.
	if !c.NoControl {
		add("-device", "virtio-serial-pci,id=vser0")
		add("-chardev", "socket,id=ctl,path="+c.ControlSocket+","+c.controlServer())
		add("-device", "virtserialport,bus=vser0.0,chardev=ctl,name="+control.PortName)
	}

	if c.NetSocket != "" {
		mac := c.MAC
		if mac == "" {
			mac = GuestMAC
		}
		add("-netdev", "stream,id=net0,server=off,addr.type=unix,addr.path="+c.NetSocket)
		// romfile= skips the iPXE option ROM: direct kernel boot never uses it, and SeaBIOS
		// spends boot time loading it.
		add("-device", "virtio-net-pci,netdev=net0,mac="+strings.ToLower(mac)+",romfile="+c.hostMTU())
	}
	add(c.extraArgs()...)
	// Entropy for the guest's crng: cryptsetup and the NFS server want random numbers early.
	add("-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0")
	if c.VsockCID != 0 {
		add("-device", "vhost-vsock-pci,guest-cid="+strconv.FormatUint(uint64(c.VsockCID), 10))
	}
	if c.QMPSocket != "" {
		add("-chardev", "socket,id=qmp,path="+c.QMPSocket+",server=on,wait=off", "-mon", "chardev=qmp,mode=control")
	}
	if c.EventSocket != "" {
		add("-chardev", "socket,id=qmpev,path="+c.EventSocket+",server=on,wait=off", "-mon", "chardev=qmpev,mode=control")
	}
	if c.PidFile != "" {
		add("-pidfile", c.PidFile)
	}
	add(c.RunAs.args()...)
	return a, nil
}

func (c *Config) machineArgs(cpus int) []string {
	switch {
	case c.Accel == AccelHVF && c.Arch == ArchARM64:
		return []string{"-M", "virt,accel=hvf" + virtGICOption(cpus), "-cpu", "host"}
	case c.Accel == AccelTCG && c.Arch == ArchARM64:
		// Emulating pointer authentication (QARMA) makes the guest about 6x slower.
		return []string{"-M", "virt" + virtGICOption(cpus), "-accel", tcgAccel(cpus), "-cpu", "max,pauth=off"}
	case c.Arch == ArchARM64: // kvm
		return []string{"-M", "virt" + virtGICOption(cpus), "-accel", string(c.Accel), "-cpu", "host"}
	case c.Accel == AccelTCG:
		return []string{"-M", q35, "-accel", tcgAccel(cpus), "-cpu", "max"}
	default: // amd64 on hvf or kvm
		return []string{"-M", q35, "-accel", string(c.Accel), "-cpu", "host"}
	}
}

// q35 without the built-in devices luksmount never uses (PS/2 controller, AHCI, SMBus, VMware
// port, USB, VGA, SMM): fewer devices for the firmware and the kernel to probe at boot.
const q35 = "q35,i8042=off,sata=off,smbus=off,vmport=off,usb=off,graphics=off,smm=off"

func tcgAccel(cpus int) string {
	if cpus > 1 {
		return "tcg,thread=multi"
	}
	return "tcg"
}

// diskArgs renders one disk as a protocol node, a raw format node and a virtio-blk device.
//
// Caching: the device always advertises a volatile write cache (write-cache=on), so the guest sends
// FLUSH for every barrier (ext4 commits, fsync, unmount) and QEMU turns each into fdatasync on the
// host file or device (block/file-posix.c handle_aiocb_flush; never F_FULLFSYNC, so on macOS it
// does not reach the drive's cache: the supervisor flushes that after QEMU exits, see
// blockdev.Device.Flush). On Linux, host devices are opened with O_DIRECT (cache.direct=on, QEMU's
// cache=none) so the data is not cached twice and host RAM use stays flat; regular files (tests) may
// sit on tmpfs, which has no O_DIRECT, so they use the page cache (cache=writeback). macOS has no
// O_DIRECT, so it is writeback there too.
func (c *Config) diskArgs(i int, d Disk) []string {
	var a []string
	id := "disk" + strconv.Itoa(i)
	filename := d.Path
	if d.FD != 0 {
		set := strconv.Itoa(i + 1)
		opt := "fd=" + strconv.Itoa(d.FD) + ",set=" + set
		a = append(a, "-add-fd", opt)
		filename = "/dev/fdset/" + set
	}
	driver := "file"
	if d.HostDevice {
		driver = "host_device"
	}
	ro := "off"
	if d.ReadOnly {
		ro = "on"
	}
	direct := "off"
	if c.HostOS == "linux" && d.HostDevice {
		direct = "on"
	}
	locking := ""
	if l := diskLockingOption(c.HostOS); l != "" {
		locking = ",locking=" + l
	}
	a = append(a, "-blockdev", "driver="+driver+",node-name="+id+"-file,filename="+filename+
		",read-only="+ro+",cache.direct="+direct+",cache.no-flush=off"+locking+discardOpt(d))
	a = append(a, "-blockdev", "driver=raw,node-name="+id+",file="+id+"-file,read-only="+ro+discardOpt(d))
	l, p := d.blockSizes()
	// werror/rerror=report: an I/O error (a drive unplugged, a full host disk) goes to the guest as
	// an error, and to QMP as BLOCK_IO_ERROR, instead of pausing the VM (werror=enospc, QEMU's
	// default, stops it on ENOSPC), which would hang every NFS call (QEMU docs, -device virtio-blk).
	dev := "virtio-blk-pci,drive=" + id + ",id=" + id + "-dev,write-cache=on,werror=report,rerror=report" +
		",logical_block_size=" + strconv.Itoa(l) + ",physical_block_size=" + strconv.Itoa(p)
	if d.Serial != "" {
		dev += ",serial=" + d.Serial
	}
	return append(a, "-device", dev)
}
