//go:build vmtest

package cli

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oneLine returns the error: the last stderr line (earlier ones are progress), which must read
// "luksmount: what happened; what to do".
func oneLine(t *testing.T, r result) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	msg := lines[len(lines)-1]
	if !strings.HasPrefix(msg, "luksmount: ") || len(msg) < 20 {
		t.Fatalf("want a final `luksmount: ...` error line on stderr, got:\n%s", r)
	}
	return msg
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBadInputs: each bad target gets its own message and exit code and stays byte-for-byte
// unchanged.
func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	good := e.format("good.img", "64M")
	goodBytes, _ := os.ReadFile(good)

	truncated := filepath.Join(e.dir, "truncated.img")
	writeFile(t, truncated, goodBytes[:12<<10]) // the binary header survives, the JSON area doesn't

	keyslots := filepath.Join(e.dir, "keyslots.img")
	damaged := bytes.Clone(goodBytes)
	for i := 0x8000; i < 0x8000+256<<10; i++ { // LUKS2's first keyslot area
		damaged[i] ^= 0x5a
	}
	writeFile(t, keyslots, damaged)

	random := filepath.Join(e.dir, "random.img")
	rb := make([]byte, 16<<20)
	rand.Read(rb)
	writeFile(t, random, rb)

	empty := filepath.Join(e.dir, "empty.img")
	writeFile(t, empty, nil)

	cases := []struct {
		name   string
		target string
		stdin  string
		code   int
		words  []string
	}{
		{"missing", filepath.Join(e.dir, "nope.img"), "", 4, []string{"nope.img"}},
		{"zero-size", empty, passphrase + "\n", 8, []string{"empty"}},
		{"random bytes", random, passphrase + "\n", 8, []string{"LUKS"}},
		{"truncated", truncated, passphrase + "\n", 8, []string{"LUKS"}},
		{"damaged keyslot area", keyslots, passphrase + "\n" + passphrase + "\n" + passphrase + "\n", 3, []string{"passphrase"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before string
			if _, err := os.Stat(c.target); err == nil {
				before = sha(t, c.target)
			}
			r := e.mustLM(c.code, c.stdin, "--no-mount", "--accel", "tcg", c.target)
			msg := oneLine(t, r)
			t.Logf("exit %d: %s", r.code, msg)
			for _, w := range c.words {
				if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
			if before != "" && sha(t, c.target) != before {
				t.Fatal("the target changed")
			}
			if left := qemuFor(e.dir); len(left) > 0 {
				t.Fatalf("QEMU left running: %v", left)
			}
		})
	}
}

// TestBusyAndOutOfMemory: a target already served by another session is refused, and a VM too
// small for the key derivation says how much memory it needs.
func TestBusyAndOutOfMemory(t *testing.T) {
	e := newEnv(t)
	img := e.format("vault.img", "64M")
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	before := e.find(img)
	r := e.mustLM(5, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	t.Logf("busy: exit %d: %s", r.code, oneLine(t, r))
	if after := e.find(img); after.VMPid != before.VMPid || !alive(after.VMPid) {
		t.Fatal("the second attempt disturbed the running session")
	}
	e.mustLM(0, "", "stop", "--all")

	heavy := filepath.Join(e.dir, "heavy.img")
	e.mustLM(0, passphrase+"\n", "format", "--size", "64M", "--pbkdf-memory", "131072", "--pbkdf-force-iterations", "4", "--accel", "tcg", heavy)
	sum := sha(t, heavy)
	r = e.mustLM(7, passphrase+"\n", "--no-mount", "--accel", "tcg", "--memory", "192", heavy)
	msg := oneLine(t, r)
	t.Logf("out of memory: exit %d: %s", r.code, msg)
	if !strings.Contains(msg, "128 MiB") {
		t.Errorf("message %q does not say the key slot needs 128 MiB", msg)
	}
	if !strings.Contains(msg, "--memory") {
		t.Errorf("message %q does not say how to retry", msg)
	}
	// At the --memory floor the whole guest image unpacked (the kernel did not say otherwise).
	consoles, _ := filepath.Glob(filepath.Join(e.log, "*.console.log"))
	if len(consoles) == 0 {
		t.Error("no VM console log to check the image unpacked at --memory 192")
	}
	for _, c := range consoles {
		if b, _ := os.ReadFile(c); strings.Contains(string(b), "Initramfs unpacking failed") {
			t.Errorf("%s: the guest image did not unpack whole at the --memory floor", filepath.Base(c))
		}
	}
	if sha(t, heavy) != sum {
		t.Fatal("the image changed")
	}
	// Without --memory, luksmount sizes the VM from the header and it works.
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", heavy)
	e.mustLM(0, "", "stop", "--all")
}

// TestSecretsNeverLeak mounts with a known passphrase, then searches every process's argv and
// environment, the logs, the state directory and the QEMU command line for it.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t)
	img := e.format("vault.img", "64M")
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	s := e.find(img)
	needle := []byte(passphrase)

	procs, _ := os.ReadDir("/proc")
	checked := 0
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", p.Name(), f))
			if err != nil {
				continue
			}
			checked++
			if bytes.Contains(b, needle) {
				t.Errorf("the passphrase is in /proc/%s/%s", p.Name(), f)
			}
		}
	}
	qemu, err := os.ReadFile(filepath.Join("/proc", itoa(s.VMPid), "cmdline"))
	if err != nil || len(qemu) == 0 {
		t.Fatalf("cannot read QEMU's command line: %v", err)
	}
	files := 0
	for _, root := range []string{e.run, e.log} {
		filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			files++
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, needle) {
				t.Errorf("the passphrase is in %s", path)
			}
			return nil
		})
	}
	t.Logf("searched %d /proc files and %d state and log files", checked, files)
	if files == 0 {
		t.Fatal("found no state or log files to search: the test is not looking in the right place")
	}
	e.mustLM(0, "", "stop", "--all")
}

// TestSupervisorKilled: SIGKILL the host supervisor; the VM must notice and stop by itself within
// seconds, leave no process behind, and the next mount of the same drive works.
func TestSupervisorKilled(t *testing.T) {
	e := newEnv(t)
	img := e.format("vault.img", "64M")
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	s := e.find(img)
	start := time.Now()
	if err := syscall.Kill(s.SupervisorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, 45*time.Second, s.SupervisorPid, s.VMPid)
	t.Logf("the VM stopped %s after its supervisor was killed", time.Since(start).Round(100*time.Millisecond))
	if left := qemuFor(e.dir); len(left) > 0 {
		t.Fatalf("orphan QEMU processes: %v", left)
	}
	// The next command cleans up the dead session, and the drive mounts again.
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	e.mustLM(0, "", "stop", "--all")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestQEMURunsAsInvokingUser: under sudo on Linux, QEMU drops to the invoking user and reaches
// the disk only through the descriptor luksmount opened.
func TestQEMURunsAsInvokingUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test plays sudo and must run as root (as make test does)")
	}
	e := newEnv(t)
	img := e.format("vault.img", "64M")
	os.Chmod(img, 0o600) // only root may open it: QEMU must use the inherited descriptor
	os.Chmod(e.dir, 0o755)
	t.Setenv("SUDO_UID", "65534")
	t.Setenv("SUDO_GID", "65534")
	t.Setenv("SUDO_USER", "nobody")
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	s := e.find(img)
	b, err := os.ReadFile(filepath.Join("/proc", itoa(s.VMPid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	if uid != "65534" {
		t.Fatalf("QEMU runs as uid %s; want the invoking user 65534", uid)
	}
	if names, err := nfsClient(s).Ls(ctx(t), "/"); err != nil || len(names) == 0 {
		t.Fatalf("the export is not usable with QEMU unprivileged: %q, %v", names, err)
	}
	e.mustLM(0, "", "stop", "--all")
}
