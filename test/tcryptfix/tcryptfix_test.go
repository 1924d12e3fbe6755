package tcryptfix

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Debian's cryptsetup (a host package of build.sh) reads what Write makes. Only PIM cases: with a
// PIM cryptsetup tries VeraCrypt's KDFs alone and needs no AF_ALG, which a CI host may lack; the
// VM tier (test/storage TestStackVeraCrypt) opens and mounts every kind.
func TestCryptsetupReadsTheHeaders(t *testing.T) {
	kf := []byte("keyfile bytes")
	for _, c := range []struct {
		name, stdin string
		spec        Spec
		args        []string
		want        string
	}{
		{"pim", "pw-pim\n", Spec{Size: 1 << 20, Outer: Header{Password: []byte("pw-pim"), PIM: 3}}, []string{"--veracrypt-pim=3"}, "MK offset:\t131072"},
		{"keyfile", "pw-kf\n", Spec{Size: 1 << 20, Outer: Header{Password: []byte("pw-kf"), PIM: 2, Keyfiles: [][]byte{kf}}}, []string{"--veracrypt-pim=2", "--key-file=KF"}, "PBKDF2 hash:\tsha512"},
		{"hidden", "hid\n", Spec{Size: 1 << 20, Outer: Header{Password: []byte("outer"), PIM: 1}, Hidden: Header{Password: []byte("hid"), PIM: 4}, HiddenPlain: make([]byte, 64<<10)},
			[]string{"--veracrypt-pim=4", "--tcrypt-hidden"}, "MK offset:\t851968"},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "v.img")
		if err := Write(p, c.spec); err != nil {
			t.Fatal(err)
		}
		args := []string{"tcryptDump", "--veracrypt", p}
		for _, a := range c.args {
			if a == "--key-file=KF" {
				kp := filepath.Join(dir, "kf")
				if err := os.WriteFile(kp, kf, 0o600); err != nil {
					t.Fatal(err)
				}
				a = "--key-file=" + kp
			}
			args = append(args, a)
		}
		cmd := exec.Command("cryptsetup", args...)
		cmd.Stdin = strings.NewReader(c.stdin)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "VERACRYPT header information") || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: cryptsetup %v: %v\n%s", c.name, args, err, out)
		}
		// A wrong password is refused (the header is not readable by accident).
		cmd = exec.Command("cryptsetup", args...)
		cmd.Stdin = strings.NewReader("wrong\n")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%s: a wrong password read the header:\n%s", c.name, out)
		}
	}
}
