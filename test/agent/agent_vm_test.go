//go:build vmtest

// Package agent boots the guest image under QEMU (TCG) and drives the agent over virtio-serial
// with the real control client: format, unlock, mount, check, serve, shutdown and the watchdog.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/vmtest"
)

// vmOpts varies the VM: memory in MiB (0 = 512) and the disks after the first.
type vmOpts struct {
	memMiB int
	more   []string
}

// bootVM boots the agent on disk (and o.more) through test/vmtest and host/vm, as the product does,
// and waits for Hello.
func bootVM(t *testing.T, disk string, o vmOpts) *vmtest.VM {
	t.Helper()
	if o.memMiB == 0 {
		o.memMiB = 512
	}
	disks := []qemu.Disk{{Path: disk}}
	for _, d := range o.more {
		disks = append(disks, qemu.Disk{Path: d})
	}
	return vmtest.Start(t, vmtest.Options{MemoryMiB: o.memMiB, CPUs: 2, Disks: disks, Lifetime: 4 * time.Minute})
}

// shutdown asks the agent to shut down (sync, unmount, close, power off) and waits for QEMU to
// exit cleanly.
func shutdown(t *testing.T, v *vmtest.VM, within time.Duration) *control.ShutdownReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	t0 := time.Now()
	sd, err := v.Shutdown(ctx, false)
	if err != nil {
		t.Fatalf("Shutdown = %+v, %v", sd, err)
	}
	t.Logf("shutdown to QEMU exit: %v", time.Since(t0).Round(time.Millisecond))
	return sd
}

// waitPoweredOff waits for the guest to power off on its own (watchdog, power button): QEMU exits
// with status 0, which host/vm reports as unasked-for; a panic or a QEMU error fails the test.
func waitPoweredOff(t *testing.T, v *vmtest.VM, within time.Duration) {
	t.Helper()
	select {
	case <-v.Done():
	case <-time.After(within):
		t.Fatalf("the VM did not power off within %v", within)
	}
	if err := v.Err(); err != nil && !strings.Contains(err.Error(), "powered off by itself") {
		t.Fatalf("VM exit: %v", err)
	}
}

func newDisk(t *testing.T, size int64) string { return vmtest.NewDisk(t, size) }

func logTimeline(t *testing.T, title string, evs []control.Event) {
	t.Helper()
	t.Logf("%s:\n%s", title, vmtest.FormatSteps(evs))
}

func TestAgentLifecycle(t *testing.T) {
	disk := newDisk(t, 256<<20)
	v := bootVM(t, disk, vmOpts{})
	c := v.Control()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	h := v.Hello
	if h.State != control.StateReady || h.Arch != "amd64" || h.Kernel == "" {
		t.Fatalf("Hello = %+v", h)
	}
	logTimeline(t, "boot timeline", h.Timeline)
	if !hasStep(h.Timeline, "network") {
		t.Fatal("no network step in the boot timeline")
	}

	p, err := c.Probe(ctx)
	if err != nil || len(p.Disks) != 1 || p.Disks[0].Device != "/dev/vda" || p.Disks[0].Size != 256<<20 || p.Disks[0].Type != "" {
		t.Fatalf("Probe of a blank disk = %+v, %v", p, err)
	}

	pass := []byte("correct horse")
	t0 := time.Now()
	f, err := c.Format(ctx, control.FormatRequest{Type: "luks2", PBKDF: "argon2id", PBKDFMemoryKiB: 32768,
		PBKDFForceIterations: 4, Label: "vmtest"}, pass)
	if err != nil || f.LUKSUUID == "" || f.FSUUID == "" {
		t.Fatalf("Format = %+v, %v", f, err)
	}
	t.Logf("format (luks2 argon2id 32 MiB + mkfs.ext4) took %v", time.Since(t0).Round(time.Millisecond))

	p, err = c.Probe(ctx)
	if err != nil || p.Disks[0].Type != "crypto_LUKS" || p.Disks[0].UUID != f.LUKSUUID || p.Disks[0].LUKS == nil ||
		p.Disks[0].LUKS.Version != 2 || p.Disks[0].LUKS.KDF != "argon2id" || p.Disks[0].LUKS.MaxMemoryKiB != 32768 {
		t.Fatalf("Probe after format = %+v (luks %+v), %v", p, p.Disks[0].LUKS, err)
	}

	_, err = c.Mount(ctx, control.MountRequest{})
	if !errors.Is(err, control.ErrBadState) {
		t.Fatalf("Mount before unlock = %v; want bad-state", err)
	}
	_, err = c.Unlock(ctx, control.UnlockRequest{}, []byte("wrong horse"))
	if !errors.Is(err, control.ErrWrongPassphrase) {
		t.Fatalf("Unlock(wrong) = %v; want wrong-passphrase", err)
	}
	t0 = time.Now()
	u, err := c.Unlock(ctx, control.UnlockRequest{}, pass)
	if err != nil || u.Mapper != "/dev/mapper/luksmount" {
		t.Fatalf("Unlock = %+v, %v", u, err)
	}
	t.Logf("unlock took %v", time.Since(t0).Round(time.Millisecond))

	ck, err := c.Check(ctx, control.CheckRequest{})
	if err != nil || !ck.Clean {
		t.Fatalf("Check = %+v, %v", ck, err)
	}
	m, err := c.Mount(ctx, control.MountRequest{Options: []string{"noatime"}})
	if err != nil || m.FSType != "ext4" || m.Label != "vmtest" || m.UUID != f.FSUUID || m.ReadOnly {
		t.Fatalf("Mount = %+v, %v", m, err)
	}
	sv, err := c.Serve(ctx, control.ServeRequest{ClientUID: 501, ClientGID: 20})
	if err != nil || sv.Address != "192.168.127.2:2049" {
		t.Fatalf("Serve = %+v, %v", sv, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.State != control.StateServing || st.MemTotalKiB == 0 || st.Label != "vmtest" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	// The export answers through the product's network: gvproxy's 127.0.0.1 forward.
	nfsPort := v.NFSAddr()[strings.LastIndexByte(v.NFSAddr(), ':')+1:]
	url := fmt.Sprintf("nfs://127.0.0.1/?nfsport=%s&mountport=%s&version=3", nfsPort, nfsPort)
	out, err := exec.CommandContext(ctx, "nfs-ls", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lost+found") {
		t.Fatalf("nfs-ls %s: %v\n%s", url, err, out)
	}
	if !sawProgress(v.Events(), "unlock") {
		t.Fatal("no unlock progress event reached the host")
	}
	sd := shutdown(t, v, 30*time.Second)
	if !sd.Synced || !sd.Unmounted || !sd.Closed {
		t.Fatalf("Shutdown = %+v", sd)
	}
	logTimeline(t, "shutdown steps", sd.Steps)

	// Second boot: the container opens read-only and the filesystem is still there.
	v2 := bootVM(t, disk, vmOpts{})
	c2 := v2.Control()
	if _, err := c2.Unlock(ctx, control.UnlockRequest{ReadOnly: true}, pass); err != nil {
		t.Fatalf("read-only Unlock on the second boot: %v", err)
	}
	m2, err := c2.Mount(ctx, control.MountRequest{})
	if err != nil || !m2.ReadOnly || m2.UUID != f.FSUUID {
		t.Fatalf("second Mount = %+v, %v; want the same filesystem, read-only", m2, err)
	}
	v2.LogTimeline("second boot timeline")
	shutdown(t, v2, 30*time.Second)
}

func TestWatchdogPowersOffWhenHostVanishes(t *testing.T) {
	disk := newDisk(t, 64<<20)
	// QEMU listens on the control port here, so the "host" can leave and come back.
	l := vmtest.StartListening(t, vmtest.Options{MemoryMiB: 512, CPUs: 2, Disks: []qemu.Disk{{Path: disk}}, Lifetime: 4 * time.Minute})
	c := l.Dial(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Hello(ctx, "vmtest"); err != nil {
		t.Fatalf("Hello: %v", err)
	}
	// A host that comes back within the grace period is served again.
	c.Close()
	time.Sleep(2 * time.Second)
	c = l.Dial(t, nil)
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status after reconnecting: %v", err)
	}
	c.Close() // the host supervisor "dies"
	gone := time.Now()
	if err := l.Wait(40 * time.Second); err != nil {
		t.Fatalf("after the host left: %v", err)
	}
	if d := time.Since(gone); d < 9*time.Second {
		t.Fatalf("VM stopped %v after the host left; want the 10 s grace", d)
	}
}

func hasStep(evs []control.Event, step string) bool {
	for _, ev := range evs {
		if ev.Kind == control.EventStep && ev.Step == step {
			return true
		}
	}
	return false
}

func sawProgress(events []control.Event, step string) bool {
	for _, ev := range events {
		if ev.Kind == control.EventProgress && ev.Step == step {
			return true
		}
	}
	return false
}

func TestPowerButtonShutsDownCleanly(t *testing.T) {
	disk := newDisk(t, 64<<20)
	v := bootVM(t, disk, vmOpts{})
	c := v.Control()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Format(ctx, control.FormatRequest{Type: "none", Label: "plain"}, nil); err != nil {
		t.Fatalf("Format(none): %v", err)
	}
	if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if err := v.PowerButton(); err != nil {
		t.Fatalf("power button: %v", err)
	}
	waitPoweredOff(t, v, 60*time.Second)
	// A clean unmount leaves the filesystem clean for the host's e2fsck.
	out, err := exec.Command("e2fsck", "-n", "-f", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck after the power button: %v\n%s", err, out)
	}
}

func TestUnlockOutOfMemorySaysHowMuch(t *testing.T) {
	disk := newDisk(t, 64<<20)
	// 1 GiB argon2id keyslot, made on the host: the 256 MiB VM cannot derive it.
	cmd := exec.Command("cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file=-",
		"--pbkdf", "argon2id", "--pbkdf-memory", "1048576", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1", disk)
	cmd.Stdin = strings.NewReader("pw")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("host luksFormat: %v\n%s", err, out)
	}
	v := bootVM(t, disk, vmOpts{memMiB: 256})
	c := v.Control()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("pw"))
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeOutOfMemory || !strings.Contains(ce.Message, "1024 MiB") {
		t.Fatalf("Unlock in a small VM = %v; want out-of-memory naming the 1024 MiB the keyslot needs", err)
	}
	t.Logf("message: %s", ce.Message)
	st, err := c.Status(ctx)
	if err != nil || st.State != control.StateReady {
		t.Fatalf("Status after OOM = %+v, %v; want the agent up and ready", st, err)
	}
	shutdown(t, v, 30*time.Second)
}

// TestUnlockLUKSVariantsAndKeyFiles opens, in one VM, a drive of every cipher, hash and KDF the
// guest supports. Host-made drives (each keyslot written by the host's cryptsetup) are unlocked;
// the ciphers this host's kernel lacks (serpent, twofish, camellia, lrw) are formatted by the
// guest's own cryptsetup with ext4 inside, then unlocked and mounted again, the label proving
// the data path. Modules load on demand. A cipher the guest lacks is refused without blaming
// the drive.
func TestUnlockLUKSVariantsAndKeyFiles(t *testing.T) {
	key := make([]byte, 512)
	for i := range key {
		key[i] = byte(i * 7) // includes '\n' and NUL: every byte must reach cryptsetup unchanged
	}
	type variant struct {
		name    string
		args    []string              // host luksFormat arguments; nil = formatted in the guest
		format  control.FormatRequest // guest format
		secret  []byte
		keyFile bool
	}
	luks1 := func(extra ...string) []string {
		return append([]string{"--type", "luks1", "--pbkdf-force-iterations", "1000"}, extra...)
	}
	guest := func(typ, cipher string, bits int, hash string) control.FormatRequest {
		return control.FormatRequest{Type: typ, Cipher: cipher, KeySizeBits: bits, Hash: hash, PBKDF: "pbkdf2", PBKDFForceIterations: 1000}
	}
	variants := []variant{
		{name: "luks1-pbkdf2", args: luks1(), secret: []byte("pass one")},
		{name: "luks2-argon2i-keyfile", args: []string{"--type", "luks2", "--pbkdf", "argon2i", "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4"}, secret: key, keyFile: true},
		{name: "luks2-pbkdf2", args: []string{"--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}, secret: []byte("pass three\n")},
		{name: "luks2-argon2id", args: []string{"--type", "luks2", "--pbkdf", "argon2id", "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4"}, secret: []byte("pass four")},
		{name: "luks1-sha1", args: luks1("--hash", "sha1"), secret: []byte("sha1")},
		{name: "luks1-sha512", args: luks1("--hash", "sha512"), secret: []byte("sha512")},
		{name: "luks1-whirlpool", args: luks1("--hash", "whirlpool"), secret: []byte("whirlpool")},
		{name: "luks1-ripemd160", args: luks1("--hash", "ripemd160"), secret: []byte("ripemd160")},
		{name: "aes-cbc-essiv", args: luks1("-c", "aes-cbc-essiv:sha256"), secret: []byte("essiv")},
		{name: "serpent-xts", format: guest("luks2", "serpent-xts-plain64", 0, ""), secret: []byte("serpent")},
		{name: "twofish-xts", format: guest("luks2", "twofish-xts-plain64", 0, ""), secret: []byte("twofish")},
		{name: "camellia-xts", format: guest("luks1", "camellia-xts-plain64", 0, "ripemd160"), secret: []byte("camellia")},
		{name: "aes-lrw-benbi", format: guest("luks2", "aes-lrw-benbi", 384, ""), secret: []byte("lrw")},
		{name: "serpent-essiv-wp", format: guest("luks1", "serpent-cbc-essiv:sha256", 256, "whirlpool"), secret: []byte("serpent cbc")},
	}
	var disks []string
	size := func(i int) int64 { return int64(32+i) << 20 } // distinct sizes name each disk
	for i, vr := range variants {
		disk := newDisk(t, size(i))
		disks = append(disks, disk)
		if vr.args == nil {
			continue
		}
		args := append([]string{"luksFormat", "--batch-mode", "--key-file=-"}, vr.args...)
		cmd := exec.Command("cryptsetup", append(args, disk)...)
		cmd.Stdin = bytes.NewReader(vr.secret)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: host luksFormat: %v\n%s", vr.name, err, out)
		}
	}
	// aes-ctr is a real kernel mode that the guest does not ship.
	ctr := newDisk(t, 32<<20)
	cmd := exec.Command("cryptsetup", append(append([]string{"luksFormat", "--batch-mode", "--key-file=-"}, luks1("-c", "aes-ctr-plain64")...), ctr)...)
	cmd.Stdin = strings.NewReader("ctr")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aes-ctr: host luksFormat: %v\n%s", err, out)
	}
	disks = append(disks, ctr)
	v := bootVM(t, disks[0], vmOpts{more: disks[1:]})
	c := v.Control()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev := func(i int) string { return "/dev/vd" + string(rune('a'+i)) }
	// The guest names the disks in the host's order (vda = first -drive): a member, a
	// detached header or `--volume d2p1` is only right if it does. Parallel module loading
	// once shuffled them (vdb was another disk in 2 of 5 boots).
	pr, err := c.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	sizes := map[string]int64{}
	for _, d := range pr.Disks {
		sizes[d.Device] = d.Size
	}
	for i := range variants {
		if sizes[dev(i)] != size(i) {
			t.Fatalf("%s is %d bytes; want %d (the host's disk %d): the guest named its disks out of order (%v)", dev(i), sizes[dev(i)], size(i), i, sizes)
		}
	}
	for i, vr := range variants {
		start := time.Now()
		if vr.args == nil {
			req := vr.format
			req.Device, req.Label = dev(i), vr.name
			if _, err := c.Format(ctx, req, vr.secret); err != nil {
				t.Fatalf("%s: guest format: %v", vr.name, err)
			}
		}
		_, err := c.Unlock(ctx, control.UnlockRequest{Device: dev(i), KeyFile: vr.keyFile}, vr.secret[:len(vr.secret)-1])
		if !errors.Is(err, control.ErrWrongPassphrase) {
			t.Fatalf("%s: Unlock with the last byte missing = %v; want wrong-passphrase", vr.name, err)
		}
		if _, err := c.Unlock(ctx, control.UnlockRequest{Device: dev(i), KeyFile: vr.keyFile}, vr.secret); err != nil {
			t.Fatalf("%s: Unlock: %v", vr.name, err)
		}
		what := "unlocked (wrong key, then right)"
		if vr.args == nil {
			m, err := c.Mount(ctx, control.MountRequest{})
			if err != nil || m.FSType != "ext4" || m.Label != vr.name {
				t.Fatalf("%s: Mount = %+v, %v; want the ext4 made at format, labelled %q", vr.name, m, err, vr.name)
			}
			what = "formatted, unlocked (wrong key, then right), mounted"
		}
		sd, err := c.Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true})
		if err != nil || !sd.Closed {
			t.Fatalf("%s: close = %+v, %v", vr.name, sd, err)
		}
		t.Logf("%-22s %s in %.2fs", vr.name, what, time.Since(start).Seconds())
	}
	_, err = c.Unlock(ctx, control.UnlockRequest{Device: dev(len(variants))}, []byte("ctr"))
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeUnsupportedCrypto || !strings.Contains(ce.Message, "aes-ctr-plain64") ||
		!strings.Contains(ce.Message, "cannot open yet; nothing was changed") || strings.Contains(ce.Message, "damaged") {
		t.Fatalf("aes-ctr: Unlock = %v; want unsupported-crypto naming aes-ctr-plain64", err)
	}
	t.Logf("aes-ctr: %s", ce.Message)
	if h, err := c.Hello(ctx, "test"); err == nil {
		logTimeline(t, "timeline", h.Timeline)
	}
	shutdown(t, v, 30*time.Second)
}
