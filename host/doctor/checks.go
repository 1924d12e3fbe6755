package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/host/qemu"
)

// Fix texts. The mount path names the same fix when it fails for the same reason.

// FixQEMU says how to install QEMU on goos.
func FixQEMU(goos string) string {
	if goos == "darwin" {
		return "brew install qemu"
	}
	return "install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86 qemu-system-arm)"
}

// FixFullDiskAccess is what a Mac needs before any process may open a raw disk.
func FixFullDiskAccess() string {
	return "give your terminal app Full Disk Access (System Settings > Privacy & Security > Full Disk Access), then restart the terminal"
}

// FixEntitlement is what to do when QEMU lacks the hypervisor entitlement.
func FixEntitlement(path string) string {
	return "reinstall QEMU from Homebrew (`brew reinstall qemu`, whose QEMU is signed with com.apple.security.hypervisor), or run with --accel tcg (slow); " + path + " cannot use HVF"
}

// FixNFSConf is what to do about an option in /etc/nfs.conf's nfs.client.mount.options.
func FixNFSConf(option string) string {
	return fmt.Sprintf("remove %s from nfs.client.mount.options in /etc/nfs.conf (sudo), or keep it if you know you need it", option)
}

// FixNoNFSClient says how to reach the export on a Linux host without an NFS client.
func FixNoNFSClient() string {
	return "load the kernel's NFS client (sudo modprobe nfs; Debian: apt-get install nfs-common), or use `luksmount --no-mount` and a user-space client such as libnfs's nfs-cp at the address `luksmount status` prints"
}

// FixQEMUOwner explains a QEMU that belongs to someone else than luksmount.
func FixQEMUOwner(qemuPath string) string {
	return "QEMU runs with the same rights as luksmount (root under sudo): make sure " + qemuPath + " and the directory it is in are writable only by you or root, e.g. both from the same Homebrew install"
}

var qemuVersionRE = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?`)

// ParseQEMUVersion reads `qemu-system-* --version` output.
func ParseQEMUVersion(out []byte) (major, minor, patch int, err error) {
	m := qemuVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, 0, 0, fmt.Errorf("unrecognised --version output %q", firstLine(out))
	}
	major, _ = strconv.Atoi(string(m[1]))
	minor, _ = strconv.Atoi(string(m[2]))
	if len(m[3]) > 0 {
		patch, _ = strconv.Atoi(string(m[3]))
	}
	return major, minor, patch, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func guestArch(env Env) qemu.Arch { return qemu.Arch(env.GOARCH) }

func checkQEMU(env Env) (string, Check) {
	c := Check{Name: "qemu"}
	bin := qemu.BinaryFor(guestArch(env))
	path, err := env.FindQEMU(bin)
	if err != nil {
		c.Status, c.Message, c.Fix = Fail, err.Error(), FixQEMU(env.GOOS)
		return "", c
	}
	c.Detail = map[string]string{"path": path}
	out, err := env.Run(path, "--version")
	if err != nil {
		c.Status, c.Message, c.Fix = Fail, fmt.Sprintf("%s --version failed: %v", path, err), FixQEMU(env.GOOS)
		return "", c
	}
	maj, min, patch, err := ParseQEMUVersion(out)
	least := MinQEMUFor(env.GOOS)
	if err != nil {
		c.Status, c.Message, c.Fix = Warn, fmt.Sprintf("%s: %v; cannot tell whether it is at least %s", path, err, short(least)), FixQEMU(env.GOOS)
		return path, c
	}
	have := qemu.Version{Major: maj, Minor: min, Patch: patch}
	c.Detail["version"] = have.String()
	c.Detail["minimum"] = short(least)
	if have.Less(least) {
		c.Status, c.Message = Fail, fmt.Sprintf("%s is QEMU %s; luksmount needs %s or newer", path, have, short(least))
		c.Fix = "upgrade QEMU: " + FixQEMU(env.GOOS)
		if env.GOOS == "darwin" {
			c.Message += " (it starts QEMU with -run-with user=, new in 9.1, so QEMU does not run as root)"
			c.Fix = "brew upgrade qemu"
		}
		return "", c
	}
	c.Status, c.Message = OK, fmt.Sprintf("%s is QEMU %s (>= %s)", path, have, short(least))
	return path, c
}

// short prints a minimum version as people say it: 9.1, 7.2.1.
func short(v qemu.Version) string {
	if v.Patch == 0 {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return v.String()
}

func checkQEMUOwner(env Env) Check {
	c := Check{Name: "qemu-owner"}
	o, err := env.QEMUOwnership(qemu.BinaryFor(guestArch(env)))
	if err != nil {
		c.Status, c.Message = Warn, fmt.Sprintf("cannot tell who owns QEMU and luksmount: %v", err)
		return c
	}
	c.Detail = map[string]string{"qemu_uid": strconv.Itoa(o.QEMUUID), "luksmount_uid": strconv.Itoa(o.SelfUID)}
	// A root-owned QEMU that only root can write is no risk, whoever owns luksmount.
	if o.QEMUWritableByOthers || o.QEMUUID != o.SelfUID && o.QEMUUID != 0 {
		c.Status, c.Message, c.Fix = Warn, o.Warning(), FixQEMUOwner(o.QEMUPath)
		return c
	}
	c.Status, c.Message = OK, fmt.Sprintf("QEMU (uid %d) and luksmount (uid %d): only they or root can change what sudo luksmount runs", o.QEMUUID, o.SelfUID)
	return c
}

func checkHVF(env Env) Check {
	c := Check{Name: "accel"}
	v, err := env.Sysctl("kern.hv_support")
	if err != nil || v != 1 {
		c.Status = Warn
		c.Message = "Hypervisor.framework is not available (sysctl kern.hv_support is not 1): mounts run under TCG, many times slower"
		c.Fix = "run on a Mac with HVF (not inside a VM without nested virtualisation)"
		return c
	}
	c.Status, c.Message, c.Detail = OK, "HVF usable (kern.hv_support=1)", map[string]string{"accel": "hvf"}
	return c
}

func checkEntitlement(env Env, qemuPath string) Check {
	c := Check{Name: "qemu-signed"}
	// QEMU may be a symlink (Homebrew's bin/); codesign reads the file it points to.
	out, err := env.Run("codesign", "-d", "--entitlements", "-", qemuPath)
	if err != nil && len(out) == 0 {
		c.Status, c.Message = Warn, fmt.Sprintf("cannot read QEMU's entitlements (codesign: %v)", err)
		return c
	}
	if !bytes.Contains(out, []byte("com.apple.security.hypervisor")) {
		c.Status, c.Message, c.Fix = Fail, qemuPath+" is not signed with com.apple.security.hypervisor: -accel hvf fails", FixEntitlement(qemuPath)
		return c
	}
	c.Status, c.Message = OK, "QEMU has the com.apple.security.hypervisor entitlement"
	return c
}

func checkKVM(env Env) Check {
	c := Check{Name: "accel"}
	if err := env.KVM(); err != nil {
		c.Status, c.Detail = Warn, map[string]string{"accel": "tcg"}
		c.Message = fmt.Sprintf("KVM not usable (%v): mounts use TCG, several times slower", err)
		c.Fix = "on bare metal or a VM with nested virtualisation: enable VT-x/AMD-V and make /dev/kvm readable and writable by you (group kvm)"
		return c
	}
	c.Status, c.Message, c.Detail = OK, "KVM usable (/dev/kvm created a VM)", map[string]string{"accel": "kvm"}
	return c
}

func checkImages(env Env) Check {
	c := Check{Name: "images"}
	dir, source, err := env.FindImages(env.GOARCH)
	if err != nil {
		c.Status, c.Message, c.Fix = Fail, err.Error(), images.Fix
		var nf *images.NotFoundError
		if errors.As(err, &nf) {
			c.Message = fmt.Sprintf("guest images for %s not found (looked in %s)", nf.Arch, strings.Join(nf.Searched, ", "))
		}
		return c
	}
	c.Detail = map[string]string{"dir": dir, "source": source}
	if err := env.VerifySums(dir); err != nil {
		c.Status, c.Message, c.Fix = Fail, err.Error(), images.Fix
		return c
	}
	c.Status, c.Message = OK, fmt.Sprintf("guest images for %s in %s (%s), matching %s", env.GOARCH, dir, source, images.SumsName)
	return c
}

func checkDiskAccess(env Env) Check {
	c := Check{Name: "disk-access"}
	if env.GOOS == "darwin" {
		if err := env.RawDiskAccess(); err != nil {
			c.Status, c.Message, c.Fix = Warn, fmt.Sprintf("raw disks cannot be opened from this terminal (%v): mounting a drive will fail, image files still work", err), FixFullDiskAccess()
			return c
		}
		c.Status, c.Message = OK, "this terminal has Full Disk Access (raw disks can be opened)"
		if env.Euid != 0 {
			c.Message += "; mount drives with sudo"
		}
		return c
	}
	if env.Euid != 0 {
		c.Status, c.Message, c.Fix = Warn, "not root: image files mount as you, block devices need sudo", "sudo luksmount /dev/sdX1"
		return c
	}
	c.Status, c.Message = OK, "running as root: block devices can be opened"
	return c
}

// ParseNFSConf returns the options of nfs.client.mount.options in an nfs.conf (nfs.conf(5):
// "name = value" lines, '#' comments; the last assignment wins).
func ParseNFSConf(data []byte) []string {
	var opts []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "nfs.client.mount.options" {
			continue
		}
		opts = nil
		for _, o := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			opts = append(opts, o)
		}
	}
	return opts
}

func checkNFSConf(env Env) Check {
	c := Check{Name: "nfs.conf"}
	data, err := env.ReadFile("/etc/nfs.conf")
	if err != nil {
		c.Status, c.Message = OK, "no /etc/nfs.conf: mount_nfs uses its defaults"
		return c
	}
	var bad []string
	for _, o := range ParseNFSConf(data) {
		switch o {
		case "resvport":
			// mount_nfs applies nfs.conf's options before -o (mount_nfs.c); a reserved port
			// needs root, so a user mount fails or becomes a root mount the user cannot eject.
			bad = append(bad, "resvport (a mount as you fails or needs root; luksmount passes noresvport, which comes later and wins)")
		case "nobrowse":
			bad = append(bad, "nobrowse (hides the volume from Finder; luksmount passes browse)")
		}
	}
	if len(bad) > 0 {
		opt, _, _ := strings.Cut(bad[0], " ")
		c.Status, c.Message, c.Fix = Warn, "/etc/nfs.conf sets nfs.client.mount.options "+strings.Join(bad, "; "), FixNFSConf(opt)
		return c
	}
	c.Status, c.Message = OK, "/etc/nfs.conf sets nothing that breaks a user mount"
	return c
}

func checkNFSClient(env Env) Check {
	c := Check{Name: "nfs-client"}
	if env.GOOS == "darwin" {
		if _, err := env.Stat("/sbin/mount_nfs"); err != nil {
			c.Status, c.Message, c.Fix = Fail, "/sbin/mount_nfs is missing", "reinstall macOS's NFS client (it ships with macOS)"
			return c
		}
		c.Status, c.Message = OK, "/sbin/mount_nfs present"
		return c
	}
	if data, err := env.ReadFile("/proc/filesystems"); err == nil && hasFS(data, "nfs") {
		c.Status, c.Message = OK, "the kernel has an NFS client: mounts appear in the file tree"
		return c
	}
	if out, err := env.Run("modprobe", "-n", "-q", "nfs"); err == nil {
		c.Status, c.Message = OK, "the kernel's NFS client is loadable (modprobe nfs)"
		return c
	} else if len(out) > 0 {
		err = fmt.Errorf("%v: %s", err, firstLine(out))
	}
	c.Status, c.Message, c.Fix = Warn, "this kernel has no NFS client: luksmount serves the export only (--no-mount)", FixNoNFSClient()
	return c
}

func hasFS(procFilesystems []byte, name string) bool {
	sc := bufio.NewScanner(bytes.NewReader(procFilesystems))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

func checkDirs(env Env) Check {
	c := Check{Name: "dirs"}
	dirs := append([]string(nil), env.RuntimeDirs...)
	if len(dirs) > 0 {
		dirs = dirs[:1] // new sessions go to the first
	}
	dirs = append(dirs, env.LogDir)
	c.Detail = map[string]string{"runtime": dirs[0], "log": env.LogDir}
	var bad []string
	for _, d := range dirs {
		if err := env.Writable(d); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", d, err))
		}
	}
	if len(bad) > 0 {
		c.Status, c.Message = Fail, "cannot write "+strings.Join(bad, "; ")
		c.Fix = "make these directories (or their parents) writable by you, or set LUKSMOUNT_RUNTIME_DIR / LUKSMOUNT_LOG_DIR"
		return c
	}
	c.Status, c.Message = OK, fmt.Sprintf("runtime %s and log %s are writable", dirs[0], env.LogDir)
	return c
}

func checkPort(env Env) Check {
	c := Check{Name: "port"}
	l, err := env.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Status, c.Message, c.Fix = Fail, fmt.Sprintf("cannot listen on 127.0.0.1: %v", err), "bring up the loopback interface (lo0 / lo)"
		return c
	}
	port := l.Addr().String()
	l.Close()
	c.Status, c.Message, c.Detail = OK, "127.0.0.1 has free ports ("+port+")", map[string]string{"addr": port}
	return c
}
