//go:build vmtest

package storage

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/test/tcryptfix"
)

// ext4Image makes an ext4 filesystem image of size MiB on the host holding files (mke2fs -d
// needs no loop device).
func ext4Image(t *testing.T, dir, label string, mib int, files map[string][]byte) []byte {
	t.Helper()
	src := filepath.Join(dir, label+".d")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, label+".ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", label, "-b", "1024", "-E", "root_owner=0:0", "-d", src, img, strconv.Itoa(mib)+"M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStackVeraCrypt opens volumes written by test/tcryptfix from VeraCrypt's documented format,
// holding ext4 filesystems made on the host. The outer volume opens with its password alone
// (VeraCrypt's default 500000 iterations), shows the generator's file and takes a write. The
// hidden volume needs --hidden, a PIM and a keyfile: a wrong PIM is asked again in the same VM,
// then its own filesystem is written through NFS, stopped, mounted again and read back, and
// neither password nor the PIM is in any process's argv or environment (QEMU's included) or in
// any log or state file. A TrueCrypt volume opens with --truecrypt. `--pim N` is refused before
// anything starts. (Three wrong tries: TestStackBitLockerAndVeraCrypt.)
func TestStackVeraCrypt(t *testing.T) {
	e := newStEnv(t)
	const (
		outerPass  = "vc outer pass 1"
		hiddenPass = "vc hidden pass 2"
		pim        = "23"
	)
	hello := []byte("written by tcryptfix into the outer volume\n")
	secretFile := noise(200<<10, 41)
	keyfile := noise(3000, 42)
	kf := filepath.Join(e.dir, "vc.key")
	if err := os.WriteFile(kf, keyfile, 0o600); err != nil {
		t.Fatal(err)
	}
	vc := filepath.Join(e.dir, "vc.img")
	err := tcryptfix.Write(vc, tcryptfix.Spec{
		Size:        10 << 20,
		Outer:       tcryptfix.Header{Password: []byte(outerPass)},
		Plain:       ext4Image(t, e.dir, "VCOuter", 5, map[string][]byte{"hello.txt": hello}),
		Hidden:      tcryptfix.Header{Password: []byte(hiddenPass), PIM: 23, Keyfiles: [][]byte{keyfile}},
		HiddenPlain: ext4Image(t, e.dir, "VCHidden", 3, map[string][]byte{"secret.bin": secretFile}),
	})
	if err != nil {
		t.Fatal(err)
	}

	// --pim with a number: refused, nothing booted.
	r := e.must(2, "", "--no-mount", "--accel", "tcg", "--veracrypt", "--pim", pim, vc)
	e.oneLine(r, "asks for the PIM")

	// Outer volume (VeraCrypt's default 500000 iterations): the generator's file, and a write.
	e.must(0, outerPass+"\n", "--no-mount", "--accel", "tcg", "--veracrypt", vc)
	fs := e.nfs(vc)
	if got, err := fs.ReadFile("hello.txt"); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("hello.txt in the outer volume: %q, %v", got, err)
	}
	if err := fs.WriteFile("outer.bin", noise(256<<10, 43)); err != nil {
		t.Fatal(err)
	}
	e.must(0, "", "stop", vc)

	// Hidden volume: --hidden, a PIM and a keyfile. A wrong PIM is asked again (password and PIM,
	// same VM); then its own filesystem, a write, a restart, every byte back, and no secret in sight.
	hidden := []string{"--no-mount", "--accel", "tcg", "--veracrypt", "--hidden", "--pim", "--key-file", kf, vc}
	t.Setenv("LUKSMOUNT_GUEST_DEBUG", "1") // the agent logs each command's argv: see guestTcryptArgv
	r = e.must(0, hiddenPass+"\n1\n"+hiddenPass+"\n"+pim+"\n", hidden...)
	if !strings.Contains(r.stdout+r.stderr, "attempt 1 of 3") {
		t.Errorf("a wrong PIM was not asked again:\n%s", r)
	}
	guestTcryptArgv(t, e, 2)
	s := e.session(vc)
	fs = e.nfs(vc)
	if got, err := fs.ReadFile("secret.bin"); err != nil || !bytes.Equal(got, secretFile) {
		t.Fatalf("secret.bin in the hidden volume: %d bytes, %v", len(got), err)
	}
	if _, err := fs.ReadFile("hello.txt"); err == nil {
		t.Fatal("--hidden opened the outer volume")
	}
	hdata := noise(1<<20, 44)
	if err := fs.WriteFile("hidden.bin", hdata); err != nil {
		t.Fatal(err)
	}
	checkNoSecrets(t, e, s, []string{hiddenPass, outerPass}, pim)
	e.must(0, "", "stop", vc)
	e.must(0, hiddenPass+"\n"+pim+"\n", hidden...)
	if got, err := e.nfs(vc).ReadFile("hidden.bin"); err != nil || !bytes.Equal(got, hdata) {
		t.Fatalf("hidden.bin after a restart: %d bytes, %v", len(got), err)
	}
	e.must(0, "", "stop", vc)
	checkNoSecrets(t, e, stSession{}, []string{hiddenPass, outerPass}, pim)

	// TrueCrypt: "TRUE" magic, its own iteration count.
	tc := filepath.Join(e.dir, "tc.img")
	if err := tcryptfix.Write(tc, tcryptfix.Spec{Size: 6 << 20, TrueCrypt: true, Outer: tcryptfix.Header{Password: []byte("tc pass")},
		Plain: ext4Image(t, e.dir, "TCVol", 4, map[string][]byte{"tc.txt": hello})}); err != nil {
		t.Fatal(err)
	}
	e.must(0, "tc pass\n", "--no-mount", "--accel", "tcg", "--truecrypt", tc)
	if got, err := e.nfs(tc).ReadFile("tc.txt"); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("tc.txt in the TrueCrypt volume: %q, %v", got, err)
	}
	e.must(0, "", "stop", tc)
}

// guestTcryptArgv checks the guest's own argv for cryptsetup (the agent's command log, which the
// console log keeps with luksmount.debug): at least want tcrypt opens, each asking for the PIM on
// stdin, none with an argument hidden or holding the PIM (checkNoSecrets looks for its value).
func guestTcryptArgv(t *testing.T, e *stEnv, want int) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(e.log, "*.console.log"))
	n, bad := 0, 0
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "run: cryptsetup open --type tcrypt") {
				continue
			}
			n++
			if !strings.Contains(line, " --veracrypt-query-pim") || strings.Contains(line, "(hidden)") || strings.Contains(line, "veracrypt-pim=") {
				bad++
				t.Errorf("the guest ran cryptsetup with the PIM in argv (or hid an argument): %s", line)
			}
		}
	}
	if n < want {
		t.Fatalf("found %d tcrypt opens in the guest's command log (%v), want %d: is luksmount.debug on?", n, logs, want)
	}
	if bad == 0 {
		t.Logf("%d tcrypt opens in the guest, none with the PIM in argv", n)
	}
}

// checkNoSecrets looks for the passwords anywhere in every process's argv and environment and in
// the state and log files, and for the PIM as an argument of its own or after "pim" (a bare
// number also occurs by chance). With a session it also makes sure QEMU's argv was readable.
func checkNoSecrets(t *testing.T, e *stEnv, s stSession, passwords []string, pim string) {
	t.Helper()
	pimRe := regexp.MustCompile(`(?i)pim\W{0,3}` + pim + `\b`)
	look := func(where string, b []byte, argv bool) {
		for _, p := range passwords {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("a password is in %s", where)
			}
		}
		if pimRe.Match(b) {
			t.Errorf("the PIM is in %s", where)
		}
		if argv {
			for _, a := range bytes.Split(b, []byte{0}) {
				if string(a) == pim {
					t.Errorf("the PIM is an argument in %s", where)
				}
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	n := 0
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join("/proc", p.Name(), f)); err == nil {
				n++
				look("/proc/"+p.Name()+"/"+f, b, true)
			}
		}
	}
	if s.Target != "" {
		var all []struct {
			Target string `json:"target"`
			VMPid  int    `json:"vm_pid"`
		}
		r := e.must(0, "", "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
			t.Fatal(err)
		}
		pid := 0
		for _, x := range all {
			if x.Target == s.Target {
				pid = x.VMPid
			}
		}
		if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err != nil || !bytes.Contains(b, []byte("qemu")) {
			t.Fatalf("cannot read QEMU's command line (pid %d): %v", pid, err)
		}
	}
	files := 0
	for _, root := range []string{e.run, e.log} {
		filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				if b, err := os.ReadFile(path); err == nil {
					files++
					look(path, b, false)
				}
			}
			return nil
		})
	}
	if files == 0 || n == 0 {
		t.Fatalf("searched %d /proc files and %d state/log files: not looking in the right place", n, files)
	}
	t.Logf("no secret in %d /proc files and %d state/log files", n, files)
}
