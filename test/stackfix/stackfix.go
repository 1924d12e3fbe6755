// Package stackfix makes storage-stack fixtures (LVM, mdadm RAID, LUKS in any order) in a VM that
// boots the agent image's kernel and tools with cmd/luksmount-stackfix as PID 1, and writes
// partition tables on the host (ptable.go). Nothing here ships: tests use it.
package stackfix

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/test/clientvm"
)

// SpecPath is where the fixture init reads its Spec (appended to the image as a cpio archive).
const SpecPath = "/etc/lmtest/stackfix.json"

// LinePrefix marks the init's result lines on the console.
const LinePrefix = "STACKFIX "

// Env is what every fixture command runs with: no udev in the guest.
var Env = []string{"DM_DISABLE_UDEV=1", "MDADM_NO_UDEV=1", "LVM_SUPPRESS_FD_WARNINGS=1"}

// LVMConfig is the --config every lvm command needs in the udev-less guest.
const LVMConfig = `devices{obtain_device_list_from_udev=0 use_devicesfile=0} activation{udev_sync=0 udev_rules=0 monitoring=0} global{use_lvmpolld=0} backup{backup=0 archive=0}`

// Step is one command; Stdin is fed to it (a passphrase).
type Step struct {
	Args    []string `json:"args"`
	Stdin   string   `json:"stdin,omitempty"`
	MayFail bool     `json:"may_fail,omitempty"`
}

// Spec is what the fixture VM runs.
type Spec struct {
	Steps []Step `json:"steps"`
}

// Result is one console line from the init.
type Result struct {
	Step   int      `json:"step"`
	Args   []string `json:"args,omitempty"`
	Output string   `json:"output,omitempty"`
	Err    string   `json:"err,omitempty"`
	Done   bool     `json:"done,omitempty"`
}

// LVM builds an lvm step with the guest's configuration.
func LVM(args ...string) Step {
	return Step{Args: append([]string{"lvm", args[0], "--config", LVMConfig}, args[1:]...)}
}

// Sh builds a plain step.
func Sh(args ...string) Step { return Step{Args: args} }

// Root is the repository root (for bin/, build/).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Run boots the fixture VM with disks (raw image files, /dev/vda, vdb, ... in order) and runs
// spec; it returns the results once every step succeeded, else an error with the failing step's
// output. dir holds the combined initrd and the console log.
func Run(ctx context.Context, dir string, disks []string, spec Spec) ([]Result, error) {
	root := Root()
	arch := runtime.GOARCH
	img := filepath.Join(root, "build", arch)
	initBin := filepath.Join(dir, "stackfix-init")
	build := exec.CommandContext(ctx, "go", "build", "-o", initBin, "./test/stackfix/cmd/luksmount-stackfix")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the fixture init: %v\n%s", err, out)
	}
	initrd := filepath.Join(dir, "stackfix-initrd.img")
	if err := combine(initrd, filepath.Join(img, "initramfs.cpio.lz4"), initBin, spec); err != nil {
		return nil, err
	}
	console := filepath.Join(dir, "stackfix-console.log")
	os.Remove(console)
	qc := qemu.Config{
		Arch: qemu.Arch(arch), Accel: qemu.AccelTCG, HostOS: runtime.GOOS, MemoryMiB: 512, CPUs: 1,
		Kernel: filepath.Join(img, "vmlinuz"), Initrd: initrd, ConsoleLog: console,
		NoControl: true, UserNet: &qemu.UserNet{},
	}
	for _, d := range disks {
		qc.Disks = append(qc.Disks, qemu.Disk{Path: d})
	}
	args, err := qc.Args()
	if err != nil {
		return nil, fmt.Errorf("fixture VM: %w", err)
	}
	bin := qc.Binary()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	log, _ := os.ReadFile(console)
	var res []Result
	done := false
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		i := strings.Index(l, LinePrefix)
		if i < 0 {
			continue
		}
		var r Result
		if json.Unmarshal([]byte(l[i+len(LinePrefix):]), &r) != nil {
			continue
		}
		if r.Done {
			done = true
			continue
		}
		res = append(res, r)
		if r.Err != "" && (r.Step >= len(spec.Steps) || !spec.Steps[r.Step].MayFail) {
			return res, fmt.Errorf("fixture step %d %q failed: %s\n%s", r.Step, r.Args, r.Err, r.Output)
		}
	}
	if !done {
		tail := string(log)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return res, errors.Join(fmt.Errorf("the fixture VM did not finish (qemu: %v, %s)\nconsole tail:\n%s", runErr, stderr.String(), tail))
	}
	return res, nil
}

// combine appends a cpio archive with the fixture init as /init and the spec to the agent image.
func combine(out, image, initBin string, spec Spec) error {
	initData, err := os.ReadFile(initBin)
	if err != nil {
		return err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return clientvm.WriteInitrd(out, image, map[string][]byte{SpecPath: js, "/init": initData}, "/init")
}
