//go:build vmtest

package vmboot

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/luksmount/luksmount/test/stackfix"
	"github.com/luksmount/luksmount/test/vmtest"
)

// powerDownLine is what the guest kernel prints just before it asks the machine to power off
// (kernel/reboot.c kernel_power_off, after the reboot notifiers and device_shutdown).
const powerDownLine = "reboot: Power down"

// powerOffRig boots the agent image's kernel with the stackfix init as PID 1: it runs a spec's
// commands (mdadm, cryptsetup, mkfs) on fresh disks and powers off through initsys.PowerOff, the
// agent's own power-off. Each round is one boot; a round hangs when the kernel has not printed
// powerDownLine a few seconds after the last command.
type powerOffRig struct {
	t       *testing.T
	dir     string
	kernel  string
	initrd  string
	cpus    int
	cmdline string
	disks   int
	mtu     int    // with a user network: the virtio-net host_mtu (0 = no network)
	ready   string // the console line after which the guest powers off
	keep    string // where to copy the console of a hung round ("" = the test log only)
}

type roundResult struct {
	hung     bool
	stepsOK  bool
	toDone   time.Duration // boot + commands
	toPower  time.Duration // last command -> powerDownLine
	console  string
	qemuExit error
}

func newPowerOffRig(t *testing.T, initPkg string, spec *stackfix.Spec, disks, cpus int, cmdline string) *powerOffRig {
	t.Helper()
	dir, err := os.MkdirTemp("", "poweroff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	kernel, image := vmtest.Images(t, qemu.Arch(runtime.GOARCH))
	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-o", initBin, initPkg)
	build.Dir = stackfix.Root()
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the fixture init: %v\n%s", err, out)
	}
	initrd := filepath.Join(dir, "initrd.img")
	if err := appendInit(initrd, image, initBin, spec); err != nil {
		t.Fatal(err)
	}
	return &powerOffRig{t: t, dir: dir, kernel: kernel, initrd: initrd, cpus: cpus, cmdline: cmdline,
		disks: disks, ready: stackfix.LinePrefix + `{"step":-1,"done":true}`, keep: os.Getenv("LUKSMOUNT_POWEROFF_KEEP")}
}

// appendInit writes image + a second gzip'd cpio member with the spec and the init (the kernel
// unpacks concatenated archives in order, so the later /init wins).
func appendInit(out, image, initBin string, spec *stackfix.Spec) error {
	base, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		return err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Write(base)
	zw := gzip.NewWriter(&buf)
	w := cpio.NewWriter(zw)
	recs := []cpio.Record{{Name: "init", Mode: cpio.TypeReg | 0o755, Data: initData}}
	if spec != nil {
		recs = append(recs, cpio.Record{Name: "etc/lmtest", Mode: cpio.TypeDir | 0o755},
			cpio.Record{Name: strings.TrimPrefix(stackfix.SpecPath, "/"), Mode: cpio.TypeReg | 0o644, Data: js})
	}
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			return err
		}
	}
	if err := errors.Join(w.Close(), zw.Close()); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// round boots once on fresh sparse disks and waits for the power-off.
func (r *powerOffRig) round(n int, budget time.Duration, cmdline string) roundResult {
	t := r.t
	t.Helper()
	qc := qemu.Config{
		Arch: qemu.Arch(runtime.GOARCH), Accel: qemu.AccelTCG, HostOS: runtime.GOOS, MemoryMiB: 512, CPUs: r.cpus,
		Kernel: r.kernel, Initrd: r.initrd, Cmdline: strings.TrimSpace(r.cmdline + " " + cmdline),
		ConsoleLog: filepath.Join(r.dir, "console.log"), NoControl: true,
	}
	if r.mtu > 0 {
		qc.UserNet, qc.NetMTU = &qemu.UserNet{}, r.mtu
	}
	os.Remove(qc.ConsoleLog)
	for i := 0; i < r.disks; i++ {
		p := filepath.Join(r.dir, fmt.Sprintf("d%d.img", i))
		os.Remove(p)
		if err := stackfix.Sparse(p, 32); err != nil {
			t.Fatal(err)
		}
		qc.Disks = append(qc.Disks, qemu.Disk{Path: p, Discard: true})
	}
	args, err := qc.Args()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qc.Binary(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var res roundResult
	var doneAt time.Time
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var exitErr error
		gone := false
		select {
		case exitErr = <-exited:
			gone = true
		case <-tick.C:
		}
		b, _ := os.ReadFile(qc.ConsoleLog)
		con := string(b)
		if doneAt.IsZero() && strings.Contains(con, r.ready) {
			doneAt = time.Now()
			res.toDone = doneAt.Sub(t0)
			res.stepsOK = true
		}
		if i := strings.Index(con, powerDownLine); i >= 0 && !doneAt.IsZero() && res.toPower == 0 {
			res.toPower = time.Since(doneAt)
		}
		if gone {
			res.console, res.qemuExit = con, exitErr
			if !strings.Contains(con, powerDownLine) {
				res.hung = true // exited without powering off (a crash): counted, never hidden
			}
			break
		}
		if !doneAt.IsZero() && res.toPower == 0 && time.Since(doneAt) > budget {
			res.hung = true
			time.Sleep(r.stallWait()) // let an RCU stall report reach the console
			cmd.Process.Kill()
			<-exited
			b, _ := os.ReadFile(qc.ConsoleLog)
			res.console = string(b)
			break
		}
	}
	if res.hung && r.keep != "" {
		os.MkdirAll(r.keep, 0o755)
		os.WriteFile(filepath.Join(r.keep, fmt.Sprintf("%s-round%02d-%d.console.log", t.Name(), n, time.Now().Unix())), []byte(res.console), 0o644)
	}
	return res
}

// stallWait is how long a hung round is left running before the kill, so that an RCU stall report
// (rcupdate.rcu_cpu_stall_timeout= on the cmdline) reaches the console.
func (r *powerOffRig) stallWait() time.Duration {
	for _, f := range strings.Fields(r.cmdline) {
		if v, ok := strings.CutPrefix(f, "rcupdate.rcu_cpu_stall_timeout="); ok {
			if s, err := strconv.Atoi(v); err == nil {
				return time.Duration(s+3) * time.Second
			}
		}
	}
	return 0
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// powerOffSpec is the multi-disk stack the hang was seen after: an md RAID 1 and a RAID 0, a
// dm-crypt mapping with discards allowed on the mirror, mkfs (which discards the whole device),
// then the teardown the agent does (close the mapping, stop the arrays).
func powerOffSpec() stackfix.Spec {
	key := strings.Repeat("k", 64) // a test-only key, through stdin
	return stackfix.Spec{Steps: []stackfix.Step{
		stackfix.Sh("mdadm", "--create", "/dev/md0", "--run", "--metadata=1.2", "--level=1", "--raid-devices=2", "/dev/vda", "/dev/vdb"),
		stackfix.Sh("mdadm", "--create", "/dev/md1", "--run", "--metadata=1.2", "--level=0", "--raid-devices=2", "/dev/vdc", "/dev/vdd"),
		{Args: []string{"cryptsetup", "open", "--type", "plain", "--cipher", "aes-xts-plain64", "--key-size", "512",
			"--key-file", "-", "--keyfile-size", "64", "--allow-discards", "/dev/md0", "po0"}, Stdin: key},
		{Args: []string{"cryptsetup", "open", "--type", "plain", "--cipher", "aes-xts-plain64", "--key-size", "512",
			"--key-file", "-", "--keyfile-size", "64", "--allow-discards", "/dev/md1", "po1"}, Stdin: key},
		stackfix.Sh("mkfs.ext4", "-q", "-E", "discard", "/dev/mapper/po0"),
		stackfix.Sh("mkfs.ext4", "-q", "-E", "discard", "/dev/mapper/po1"),
		stackfix.Sh("cryptsetup", "close", "po0"),
		stackfix.Sh("cryptsetup", "close", "po1"),
		stackfix.Sh("mdadm", "--stop", "/dev/md0"),
		stackfix.Sh("mdadm", "--stop", "/dev/md1"),
	}}
}

// TestPowerOffLoop boots, builds and tears down an md + dm-crypt stack and powers off, several
// times: every round must reach "reboot: Power down" within a few seconds.
func TestPowerOffLoop(t *testing.T) {
	rounds := envInt("LUKSMOUNT_POWEROFF_ROUNDS", 4)
	cpus := envInt("LUKSMOUNT_POWEROFF_CPUS", 2)
	cmdline := os.Getenv("LUKSMOUNT_POWEROFF_CMDLINE")
	spec := powerOffSpec()
	rig := newPowerOffRig(t, "./test/stackfix/cmd/luksmount-stackfix", &spec, 4, cpus, cmdline)
	hung := 0
	start := time.Now()
	for i := 1; i <= rounds; i++ {
		res := rig.round(i, 8*time.Second, "")
		if !res.stepsOK {
			t.Fatalf("round %d: the fixture commands did not finish (qemu: %v)\nconsole tail:\n%s", i, res.qemuExit, tailLines(res.console, 40))
		}
		if res.hung {
			hung++
			t.Errorf("round %d: no %q within 8 s of the last command; console tail:\n%s", i, powerDownLine, tailLines(res.console, 80))
			continue
		}
		t.Logf("round %d: commands done %s after start, powered off %s later", i, res.toDone.Round(time.Millisecond), res.toPower.Round(time.Millisecond))
	}
	t.Logf("power-off hangs: %d/%d (cpus %d, cmdline %q) in %s", hung, rounds, cpus, cmdline, time.Since(start).Round(time.Second))
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestPowerOffUnderTraffic powers off while TCP traffic flows both ways over virtio-net (as NFS
// replies and the host's retries do when a session stops), through initsys.PowerOff, several
// times: every round must reach "reboot: Power down". LUKSMOUNT_POWEROFF_MODE=raw powers off
// without taking the interface down first (the agent before QuiesceNetwork), to count hangs.
func TestPowerOffUnderTraffic(t *testing.T) {
	rounds := envInt("LUKSMOUNT_POWEROFF_ROUNDS", 4)
	cpus := envInt("LUKSMOUNT_POWEROFF_CPUS", 2)
	mtu := envInt("LUKSMOUNT_POWEROFF_MTU", 65520)
	mode := os.Getenv("LUKSMOUNT_POWEROFF_MODE")
	if mode == "" {
		mode = "agent"
	}
	cmdline := os.Getenv("LUKSMOUNT_POWEROFF_CMDLINE")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	rig := newPowerOffRig(t, "./test/vmboot/poweroffinit", nil, 0, cpus, cmdline)
	rig.mtu, rig.ready = mtu, "POWEROFF-TEST traffic"
	hung := 0
	start := time.Now()
	for i := 1; i <= rounds; i++ {
		res := rig.round(i, 8*time.Second, fmt.Sprintf("lmtest.port=%d lmtest.poweroff=%s", port, mode))
		if !res.stepsOK {
			t.Fatalf("round %d: the guest did not get its traffic going (qemu: %v)\nconsole tail:\n%s", i, res.qemuExit, tailLines(res.console, 40))
		}
		if res.hung {
			hung++
			t.Errorf("round %d: no %q within 8 s of powering off under traffic; console tail:\n%s", i, powerDownLine, tailLines(res.console, 80))
			continue
		}
		t.Logf("round %d: traffic up %s after start, powered off %s later", i, res.toDone.Round(time.Millisecond), res.toPower.Round(time.Millisecond))
	}
	t.Logf("power-off hangs under traffic: %d/%d (mode %s, cpus %d, mtu %d, cmdline %q) in %s", hung, rounds, mode, cpus, mtu, cmdline, time.Since(start).Round(time.Second))
	t.Logf("SOAK|power-off under virtio-net traffic|%d rounds|%d hung|%s", rounds, hung, time.Since(start).Round(time.Second))
}
