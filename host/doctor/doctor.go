// Package doctor checks whether a mount can work on this machine and, for each thing that
// would stop one, names the fix: QEMU and its version and owner, the accelerator, the guest
// images, raw-disk access, NFS client settings, the runtime and log directories and a local
// port. Every probe goes through Env, so each check is tested with fixtures for macOS and Linux
// on any machine; probes_*.go hold the real ones.
package doctor

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"

	"encoding/json"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // a mount still works, with a caveat (slower, needs a step first)
	Fail Status = "fail" // no mount can work until the fix is applied
)

// Check is one line of the report.
type Check struct {
	Name    string            `json:"name"`
	Status  Status            `json:"status"`
	Message string            `json:"message"`
	Fix     string            `json:"fix,omitempty"`
	Detail  map[string]string `json:"detail,omitempty"`
}

// Report is the whole result; OK means no check failed.
type Report struct {
	Version string  `json:"version"`
	OS      string  `json:"os"`
	Arch    string  `json:"arch"`
	OK      bool    `json:"ok"`
	Checks  []Check `json:"checks"`
}

// Env is everything the checks look at. Tests fill it with fixtures; Local() with the machine.
type Env struct {
	GOOS, GOARCH string
	Version      string
	Euid         int
	Executable   string // symlinks resolved

	// FindQEMU returns the path of a QEMU binary or an error whose text says how to install it
	// (host/vm.FindQEMU: the mount path fails with the same words).
	FindQEMU func(name string) (string, error)
	// Run runs a command and returns its combined output.
	Run      func(name string, args ...string) ([]byte, error)
	ReadFile func(name string) ([]byte, error)
	Stat     func(name string) (fs.FileInfo, error)
	// QEMUOwnership compares the owners of QEMU (found by binary name) and luksmount
	// (host/vm.QEMUOwnership).
	QEMUOwnership func(name string) (vm.Ownership, error)
	// Sysctl reads an integer sysctl (macOS kern.hv_support).
	Sysctl func(name string) (uint32, error)
	// KVM opens /dev/kvm and creates (and closes) a VM: a device node that opens is not enough.
	KVM func() error
	// RawDiskAccess reports whether raw disks can be opened (macOS: Full Disk Access).
	RawDiskAccess func() error
	// FindImages locates the guest images (host/images.Find).
	FindImages func(arch string) (dir, source string, err error)
	VerifySums func(dir string) error
	// Writable checks that dir exists and is writable, or could be created.
	Writable    func(dir string) error
	RuntimeDirs []string
	LogDir      string
	Listen      func(network, addr string) (net.Listener, error)
}

// MinQEMU is the oldest QEMU luksmount supports on Linux: 7.2 is Debian 12's. On macOS the
// minimum is qemu.MinRunWithUserVersion (9.1): the root supervisor starts QEMU with
// `-run-with user=`, which QEMU 9.1 introduced (commit 95e0fb0afac6, "qemu-options: Deprecate
// -runas and introduce -run-with user=..."; docs/about/deprecated.rst: "-runas (since 9.1)").
var MinQEMU = qemu.Version{Major: 7, Minor: 2}

// MinQEMUFor is the oldest QEMU luksmount can run on goos.
func MinQEMUFor(goos string) qemu.Version {
	if goos == "darwin" {
		return qemu.MinRunWithUserVersion
	}
	return MinQEMU
}

// Run runs every check that applies to env.GOOS.
func Run(env Env) Report {
	r := Report{Version: env.Version, OS: env.GOOS, Arch: env.GOARCH, OK: true}
	add := func(c Check) {
		if c.Status == Fail {
			r.OK = false
		}
		r.Checks = append(r.Checks, c)
	}
	qemuPath, c := checkQEMU(env)
	add(c)
	if qemuPath != "" {
		add(checkQEMUOwner(env))
	}
	switch env.GOOS {
	case "darwin":
		hvf := checkHVF(env)
		add(hvf)
		if qemuPath != "" && hvf.Status == OK {
			add(checkEntitlement(env, qemuPath))
		}
	case "linux":
		add(checkKVM(env))
	}
	add(checkImages(env))
	add(checkDiskAccess(env))
	if env.GOOS == "darwin" {
		add(checkNFSConf(env))
	}
	add(checkNFSClient(env))
	add(checkDirs(env))
	add(checkPort(env))
	return r
}

// WriteText prints one line per check: status, name, message, and the fix on a second line.
func (r Report) WriteText(w io.Writer) {
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%-4s  %-12s %s\n", c.Status, c.Name, c.Message)
		if c.Fix != "" && c.Status != OK {
			fmt.Fprintf(w, "      %-12s fix: %s\n", "", c.Fix)
		}
	}
	if r.OK {
		fmt.Fprintln(w, "luksmount can mount on this machine.")
	} else {
		var names []string
		for _, c := range r.Checks {
			if c.Status == Fail {
				names = append(names, c.Name)
			}
		}
		fmt.Fprintf(w, "luksmount cannot mount here until %s %s fixed (see fix: above).\n", strings.Join(names, ", "), isAre(len(names)))
	}
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// WriteJSON prints the report as one JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
