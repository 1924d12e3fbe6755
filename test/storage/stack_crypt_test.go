//go:build vmtest

package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStackBitLockerAndVeraCrypt goes as far as Linux allows: no tool here creates a BitLocker
// or VeraCrypt volume. A drive with BitLocker's documented signature is detected on the host,
// asked for its password and handed to `cryptsetup open --type bitlk`, whose refusal comes back
// as BitLocker's own one-line error (never LUKS header advice). --veracrypt on a drive that is
// no VeraCrypt volume (as a wrong password looks) takes three tries like LUKS, exit 3. Both
// drives stay byte-identical.
func TestStackBitLockerAndVeraCrypt(t *testing.T) {
	e := newStEnv(t)
	bl := filepath.Join(e.dir, "bitlocker.img")
	b := noise(32<<20, 30)
	copy(b[0:], []byte{0xEB, 0x58, 0x90})
	copy(b[3:], "-FVE-FS-")
	b[510], b[511] = 0x55, 0xAA
	if err := os.WriteFile(bl, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.must(0, "", "list", "--json", bl)
	if !strings.Contains(r.stdout, `"type": "bitlocker"`) {
		t.Fatalf("list does not see BitLocker:\n%s", r.stdout)
	}
	before := fileSha(t, bl)
	r = e.lm("secret-password\n", "--no-mount", "--accel", "tcg", bl)
	if r.code != 8 {
		t.Fatalf("BitLocker with unreadable metadata: want exit 8, got %s", r)
	}
	msg := e.oneLine(r, "BitLocker")
	if strings.Contains(msg, "luksHeaderRestore") || strings.Contains(msg, "LUKS") {
		t.Errorf("a BitLocker error talks about LUKS: %s", msg)
	}
	if fileSha(t, bl) != before {
		t.Fatal("the BitLocker drive changed")
	}

	vc := filepath.Join(e.dir, "veracrypt.img")
	if err := os.WriteFile(vc, noise(16<<20, 31), 0o644); err != nil {
		t.Fatal(err)
	}
	before = fileSha(t, vc)
	r = e.must(3, "wrong one\n1\nwrong two\n1\nwrong three\n1\n", "--no-mount", "--accel", "tcg", "--veracrypt", "--pim", vc)
	msg = e.oneLine(r, "wrong password or PIM")
	if !strings.Contains(r.stdout+r.stderr, "attempt 2 of 3") && !strings.Contains(r.stdout+r.stderr, "(attempt 2") {
		t.Logf("output:\n%s", r)
	}
	t.Logf("VeraCrypt, three wrong passwords: %s", msg)
	if fileSha(t, vc) != before {
		t.Fatal("the VeraCrypt drive changed")
	}
}
