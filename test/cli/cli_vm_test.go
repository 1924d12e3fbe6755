//go:build vmtest

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServeReadWriteStop is the host CLI issue's acceptance flow with the real binary.
func TestServeReadWriteStop(t *testing.T) {
	e := newEnv(t)
	img := e.format("vault.img", "256M", "--label", "Vault")
	plain := e.format("plain.img", "128M", "--type", "none", "--label", "Plain")

	r := e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	s := e.find(img)
	if s.State != "serving" || !strings.HasPrefix(s.NFSAddress, "127.0.0.1:") || s.Export == "" || !s.Encrypted || s.Label != "Vault" || s.FSType != "ext4" {
		t.Fatalf("status for %s = %+v; want serving ext4 'Vault' on 127.0.0.1", img, s)
	}
	if !strings.Contains(r.stdout+r.stderr, s.NFSAddress) {
		t.Fatalf("--no-mount did not print the NFS address %s:\n%s", s.NFSAddress, r)
	}
	if !alive(s.VMPid) || !alive(s.SupervisorPid) {
		t.Fatalf("status pids not alive: vm %d supervisor %d", s.VMPid, s.SupervisorPid)
	}

	// A real NFS client through the reported address: write, list, read back.
	c := nfsClient(s)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	if err := c.Put(ctx(t), "payload.bin", payload); err != nil {
		t.Fatal(err)
	}
	got, err := c.Cat(ctx(t), "payload.bin")
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back %d bytes (%v); want the %d written", len(got), err, len(payload))
	}

	// A second drive at the same time, unencrypted: no passphrase is read.
	e.mustLM(0, "", "--no-mount", "--accel", "tcg", plain)
	if n := len(e.status()); n != 2 {
		t.Fatalf("status lists %d sessions; want 2", n)
	}
	p := e.find(plain)
	if p.Encrypted || p.Label != "Plain" {
		t.Fatalf("plain session = %+v", p)
	}
	if names, err := nfsClient(p).Ls(ctx(t), "/"); err != nil || !slices.Contains(names, "lost+found") {
		t.Fatalf("listing the plain drive: %q, %v", names, err)
	}

	// stop: clean guest shutdown, nothing left behind.
	e.mustLM(0, "", "stop", img)
	waitGone(t, 30*time.Second, s.VMPid, s.SupervisorPid)
	if _, err := os.Stat(filepath.Join(e.run, s.ID)); !os.IsNotExist(err) {
		t.Fatalf("session state %s left behind after stop (%v)", filepath.Join(e.run, s.ID), err)
	}
	log := e.mustLM(0, "", "log", img).stdout
	for _, want := range []string{"unlock", "unmount", "close"} {
		if !strings.Contains(log, want) {
			t.Errorf("session log lacks the %q step:\n%s", want, log)
		}
	}
	e.mustLM(0, "", "stop", "--all")
	waitGone(t, 30*time.Second, p.VMPid, p.SupervisorPid)
	if left := qemuFor(e.dir); len(left) > 0 {
		t.Fatalf("QEMU processes left after stop --all: %v", left)
	}
	if s := e.status(); len(s) != 0 {
		t.Fatalf("status after stop --all = %+v", s)
	}

	// The data survived the clean shutdown: serve again and read it.
	e.mustLM(0, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	s = e.find(img)
	got, err = nfsClient(s).Cat(ctx(t), "payload.bin")
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("after a restart read back %d bytes (%v); want %d", len(got), err, len(payload))
	}
	e.mustLM(0, "", "stop", "--all")
}

// TestWrongPassphraseThreeTimes: exit 3, one clear line, no VM left, the image untouched.
func TestWrongPassphraseThreeTimes(t *testing.T) {
	e := newEnv(t)
	img := e.format("vault.img", "64M")
	before := sha(t, img)
	r := e.mustLM(3, "wrong one\nwrong two\nwrong three\n", "--no-mount", "--accel", "tcg", img)
	if !strings.Contains(r.stderr, "wrong passphrase") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 && !strings.Contains(r.stderr, "luksmount: wrong passphrase") {
		t.Fatalf("want a one-line wrong-passphrase error, got:\n%s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "wrong one") {
		t.Fatal("a passphrase was echoed in the output")
	}
	time.Sleep(time.Second)
	if left := qemuFor(e.dir); len(left) > 0 {
		t.Fatalf("QEMU still running after the failed unlock: %v", left)
	}
	if s := e.status(); len(s) != 0 {
		t.Fatalf("sessions left after the failed unlock: %+v", s)
	}
	if after := sha(t, img); after != before {
		t.Fatal("the image changed after three failed unlocks")
	}
	// Wrong then right unlocks on the second try in the same VM.
	r = e.mustLM(0, "wrong\n"+passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	e.mustLM(0, "", "stop", "--all")
}
