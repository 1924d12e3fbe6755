//go:build vmtest

package vmboot

import (
	"bytes"
	"context"
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
	"github.com/luksmount/luksmount/host/vnet"
	"github.com/luksmount/luksmount/initramfs"
	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/luksmount/luksmount/test/vmtest"
)

// powerDownLine is what the guest kernel prints just before it asks the machine to power off
// (kernel/reboot.c kernel_power_off, after the reboot notifiers, device_shutdown and the move to
// the boot CPU).
const powerDownLine = "reboot: Power down"

// trafficLine is what poweroffinit prints once its traffic flows; it powers off right after.
const trafficLine = "POWEROFF-TEST traffic"

// TestPowerOffUnderTraffic is issue 11's power-off hang: the guest powers off while light TCP and
// UDP traffic flows over virtio-net, through initsys.PowerOff (the agent's own power-off), several
// times, and every round must reach "reboot: Power down" within a few seconds.
//
// The hang: Debian's 6.1 kernel breaks and resets every virtio device in device_shutdown()
// (6.1.191, "virtio: break and reset virtio devices on device_shutdown()") without upstream's
// follow-up for virtio-net (0d0eff39ceb3, "virtio_ring: fix infinite loop in virtnet_poll_cleantx
// when device is broken"). A transmit after the break, with TX buffers the device has completed but
// the driver has not reclaimed, loops for ever in start_xmit (virtqueue_get_buf answers nothing on
// a broken queue, virtqueue_enable_cb_delayed still sees them pending) with preemption off; the
// power-off then waits for that CPU in migrate_to_reboot_cpu(): "ACPI: PM: Preparing to enter system
// sleep state S5", an RCU stall in start_xmit, never "reboot: Power down". Light traffic is what
// triggers it: full-speed streams keep the TX queue stopped (ring full), so nothing transmits.
//
// LUKSMOUNT_POWEROFF_MODE=raw powers off with the interface still up (the agent before
// initsys.QuiesceNetwork) to count hangs; LUKSMOUNT_POWEROFF_ROUNDS (make soak: 100),
// LUKSMOUNT_POWEROFF_CMDLINE (e.g. rcupdate.rcu_cpu_stall_timeout=3 loglevel=7 for the stall's
// backtrace), LUKSMOUNT_POWEROFF_KEEP (a directory for hung rounds' consoles).
func TestPowerOffUnderTraffic(t *testing.T) {
	rounds := envInt("LUKSMOUNT_POWEROFF_ROUNDS", 4)
	mode := os.Getenv("LUKSMOUNT_POWEROFF_MODE")
	if mode == "" {
		mode = "agent"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // echo: the guest's ping-pong
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	go func() { // a sink for the guest's datagrams
		buf := make([]byte, 2048)
		for {
			if _, _, err := u.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	rig := newPowerOffRig(t)
	args := fmt.Sprintf("lmtest.port=%d lmtest.udpport=%d lmtest.poweroff=%s %s", l.Addr().(*net.TCPAddr).Port,
		u.LocalAddr().(*net.UDPAddr).Port, mode, os.Getenv("LUKSMOUNT_POWEROFF_CMDLINE"))
	hung := 0
	start := time.Now()
	for i := 1; i <= rounds; i++ {
		res := rig.round(i, 8*time.Second, args)
		switch {
		case !res.trafficUp:
			t.Fatalf("round %d: the guest did not get its traffic going (qemu: %v)\nconsole tail:\n%s", i, res.qemuExit, tailLines(res.console, 40))
		case res.hung:
			hung++
			t.Errorf("round %d: no %q within 8 s of powering off under traffic; console tail:\n%s", i, powerDownLine, tailLines(res.console, 60))
		default:
			t.Logf("round %d: traffic up %s after start, powered off %s later", i, res.toTraffic.Round(time.Millisecond), res.toPower.Round(time.Millisecond))
		}
	}
	took := time.Since(start).Round(time.Second)
	t.Logf("power-off hangs under traffic: %d/%d (mode %s, cmdline %q) in %s", hung, rounds, mode, args, took)
	t.Logf("SOAK|power-off under virtio-net traffic|%d rounds|%d hung|%s", rounds, hung, took)
}

// powerOffRig boots the agent image's kernel and modules with poweroffinit as PID 1, on 2 vCPUs
// (what a mount gets) and QEMU's user network with the virtio-net MTU the product offers.
type powerOffRig struct {
	t              *testing.T
	dir            string
	kernel, initrd string
	keep           string // where a hung round's console is copied ("" = the test log only)
}

type roundResult struct {
	trafficUp, hung bool
	toTraffic       time.Duration // boot -> trafficLine
	toPower         time.Duration // trafficLine -> powerDownLine
	console         string
	qemuExit        error
}

func newPowerOffRig(t *testing.T) *powerOffRig {
	t.Helper()
	dir, err := os.MkdirTemp("", "poweroff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	kernel, image := vmtest.Images(t, qemu.Arch(runtime.GOARCH))
	_, file, _, _ := runtime.Caller(0)
	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-o", initBin, "./poweroffinit")
	build.Dir = filepath.Dir(file)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the power-off test init: %v\n%s", err, out)
	}
	initrd := filepath.Join(dir, "initrd.img")
	if err := appendInit(initrd, image, initBin); err != nil {
		t.Fatal(err)
	}
	return &powerOffRig{t: t, dir: dir, kernel: kernel, initrd: initrd, keep: os.Getenv("LUKSMOUNT_POWEROFF_KEEP")}
}

// appendInit writes image plus a second LZ4 cpio (see initramfs.NewLZ4Writer) member holding /init (the kernel unpacks
// concatenated archives in order, so the later /init replaces the agent).
func appendInit(out, image, initBin string) error {
	base, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Write(base)
	zw, err := initramfs.NewLZ4Writer(&buf)
	if err != nil {
		return err
	}
	w := cpio.NewWriter(zw)
	if err := w.WriteRecord(cpio.Record{Name: "init", Mode: cpio.TypeReg | 0o755, Data: initData}); err != nil {
		return err
	}
	if err := errors.Join(w.Close(), zw.Close()); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// round boots once and waits for the power-off; a round that has not printed powerDownLine
// budget after trafficLine is hung, and is killed (after the RCU stall report, if asked for).
func (r *powerOffRig) round(n int, budget time.Duration, cmdline string) roundResult {
	t := r.t
	t.Helper()
	qc := qemu.Config{
		Arch: qemu.Arch(runtime.GOARCH), Accel: qemu.AccelTCG, HostOS: runtime.GOOS, MemoryMiB: 512, CPUs: 2,
		Kernel: r.kernel, Initrd: r.initrd, Cmdline: strings.TrimSpace(cmdline),
		ConsoleLog: filepath.Join(r.dir, "console.log"), NoControl: true,
		UserNet: &qemu.UserNet{}, NetMTU: vnet.DefaultMTU, // what a session offers
	}
	os.Remove(qc.ConsoleLog)
	args, err := qc.Args()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qc.Binary(), args...)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var res roundResult
	var upAt time.Time
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
		if upAt.IsZero() && strings.Contains(con, trafficLine) {
			upAt = time.Now()
			res.trafficUp, res.toTraffic = true, upAt.Sub(t0)
		}
		powered := strings.Contains(con, powerDownLine)
		if powered && res.trafficUp && res.toPower == 0 {
			res.toPower = time.Since(upAt)
		}
		if gone {
			res.console, res.qemuExit = con, exitErr
			res.hung = res.trafficUp && !powered // an exit without the line (a crash) counts too
			break
		}
		if res.trafficUp && !powered && time.Since(upAt) > budget {
			res.hung = true
			time.Sleep(stallWait(cmdline)) // let an RCU stall report reach the console
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
func stallWait(cmdline string) time.Duration {
	for _, f := range strings.Fields(cmdline) {
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

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
