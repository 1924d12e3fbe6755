//go:build vmtest

package storage

import (
	"bytes"
	"crypto/aes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/xts"

	"github.com/luksmount/luksmount/test/stackfix"
)

// detachedDrive makes a detached-header drive as a user would, `cryptsetup luksFormat --header
// HDR DATA` on two plain files with the host's cryptsetup (build.sh's HOST_PACKAGES; no root, no
// mapping, cheap but real KDF), with the volume key chosen so the test can fill DATA without
// dm-crypt (which the host may lack) or a fixture VM: a host mkfs.ext4 image encrypted here with
// aes-xts-plain64 over 512-byte sectors, as dm-crypt does (plain64: the sector number, little
// endian, is the XTS tweak; x/crypto/xts takes it the same way, the key's halves in dm-crypt's order).
func detachedDrive(t *testing.T, dir, typ, label string, sizeMiB int) (data, hdr string) {
	t.Helper()
	data, hdr = filepath.Join(dir, "data-"+typ+".img"), filepath.Join(dir, "hdr-"+typ+".img")
	plain, vkPath := filepath.Join(dir, "plain-"+typ+".img"), filepath.Join(dir, "vk-"+typ+".bin")
	vk := noise(64, label[len(label)-1]) // a key per drive: a header with the same key would open the other drive for real
	if err := os.WriteFile(vkPath, vk, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stackfix.Sparse(data, int64(sizeMiB)); err != nil {
		t.Fatal(err)
	}
	args := []string{"luksFormat", "-q", "--type", typ, "--key-file=-", "--header", hdr, "--volume-key-file", vkPath,
		"--cipher", "aes-xts-plain64", "--key-size", "512"}
	if typ == "luks2" {
		args = append(args, "--sector-size", "512", "--pbkdf", "argon2id", "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1")
	} else {
		args = append(args, "--pbkdf-force-iterations", "1000")
	}
	run := func(stdin, name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s (./build.sh deps installs it): %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(stPass, "cryptsetup", append(args, data)...)
	os.Remove(vkPath)
	if err := stackfix.Sparse(plain, int64(sizeMiB)); err != nil {
		t.Fatal(err)
	}
	run("", "mkfs.ext4", "-q", "-F", "-L", label, plain)
	b, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(plain)
	c, err := xts.NewCipher(aes.NewCipher, vk)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(b); off += 512 {
		c.Encrypt(b[off:off+512], b[off:off+512], uint64(off/512))
	}
	if err := os.WriteFile(data, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return data, hdr
}

// TestStackDetachedHeader: LUKS2 and LUKS1 drives whose headers live in separate files
// (luksFormat --header), mounted with --header: files written through NFS survive a stop and a
// second mount byte for byte, the header files stay byte-identical, and the bad inputs each get
// their one line and exit code with the drive untouched: a missing header file (4), a file that
// is no header (8), three wrong passphrases (3), and the header of another drive, which only
// shows once the mapping opens to noise (8).
func TestStackDetachedHeader(t *testing.T) {
	e := newStEnv(t)
	data2, hdr2 := detachedDrive(t, e.dir, "luks2", "Detached2", 24)
	data1, hdr1 := detachedDrive(t, e.dir, "luks1", "Detached1", 24)
	sum2, sum1 := fileSha(t, hdr2), fileSha(t, hdr1)
	base := []string{"--no-mount", "--accel", "tcg"}

	// LUKS2: write, stop, mount again, read every byte.
	files := map[string][]byte{"big.bin": noise(3<<20+517, 60), "small.txt": []byte("detached header\n"), "empty": nil}
	r := e.must(0, stPass+"\n", append(base, "--header", hdr2, data2)...)
	if !strings.Contains(r.stdout+r.stderr, "LUKS2 header from "+hdr2) || !strings.Contains(r.stdout, `ext4 "Detached2"`) {
		t.Fatalf("the mount does not say it used the header file: %s", r)
	}
	fs := e.nfs(data2)
	for name, b := range files {
		if err := fs.WriteFile(name, b); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	size := fileSize(t, data2)
	r = e.must(1, "", "resize", "--size", "64M", data2)
	t.Logf("exit %d: %s", r.code, e.oneLine(r, "cannot resize such a drive yet"))
	if fileSize(t, data2) != size {
		t.Fatal("a refused resize grew the image")
	}
	e.must(0, "", "stop", data2)
	if fileSha(t, hdr2) != sum2 {
		t.Fatal("the LUKS2 header file changed during a read-write session")
	}
	e.must(0, stPass+"\n", append(base, "--header", hdr2, data2)...)
	fs = e.nfs(data2)
	for name, want := range files {
		got, err := fs.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after a restart: %d bytes (%v); want the %d written", name, len(got), err, len(want))
		}
	}
	e.must(0, "", "stop", data2)

	// LUKS1: a wrong passphrase first, then the right one; a file round trip in one session.
	r = e.must(0, "wrong\n"+stPass+"\n", append(base, "--header", hdr1, data1)...)
	if !strings.Contains(r.stdout+r.stderr, "attempt 1 of 3") || !strings.Contains(r.stdout+r.stderr, "LUKS1 header from "+hdr1) {
		t.Fatalf("LUKS1 with a wrong then the right passphrase: %s", r)
	}
	one := noise(1<<20, 61)
	if err := e.nfs(data1).WriteFile("one.bin", one); err != nil {
		t.Fatal(err)
	}
	if got, err := e.nfs(data1).ReadFile("one.bin"); err != nil || !bytes.Equal(got, one) {
		t.Fatalf("LUKS1 read back: %d bytes, %v", len(got), err)
	}
	e.must(0, "", "stop", data1)

	// Bad inputs: the drives and headers stay byte-identical.
	drive2, drive1 := fileSha(t, data2), fileSha(t, data1)
	r = e.must(4, stPass+"\n", append(base, "--header", filepath.Join(e.dir, "nope.img"), data2)...)
	t.Logf("exit %d: %s", r.code, e.oneLine(r, "nope.img does not exist"))
	r = e.must(8, stPass+"\n", append(base, "--header", data1, data2)...)
	t.Logf("exit %d: %s", r.code, e.oneLine(r, "is not a LUKS header"))
	r = e.must(3, "wrong one\nwrong two\nwrong three\n", append(base, "--header", hdr1, data1)...)
	t.Logf("exit %d: %s", r.code, e.oneLine(r, "wrong passphrase"))
	if !strings.Contains(r.stderr, "attempt 2 of 3") {
		t.Fatalf("three wrong passphrases: %s", r)
	}
	// hdr1's passphrase is the same: it opens data2 to noise.
	r = e.must(8, stPass+"\n", append(base, "--header", hdr1, data2)...)
	t.Logf("exit %d: %s", r.code, e.oneLine(r, "most likely belongs to another drive"))
	for p, want := range map[string]string{hdr2: sum2, hdr1: sum1, data2: drive2, data1: drive1} {
		if fileSha(t, p) != want {
			t.Fatalf("%s changed after the failures", p)
		}
	}
	if s, _ := e.cl.Status(); len(s) != 0 {
		t.Fatalf("sessions left: %+v", s)
	}
}
