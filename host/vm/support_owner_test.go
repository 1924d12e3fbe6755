package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOwnershipFixtures(t *testing.T) {
	links := map[string]string{
		"/opt/homebrew/bin/qemu-system-aarch64": "/opt/homebrew/Cellar/qemu/10.1.0/bin/qemu-system-aarch64",
		"/opt/homebrew/bin/luksmount":           "/opt/homebrew/Cellar/luksmount/1.0.0/bin/luksmount",
	}
	resolve := func(p string) (string, error) {
		if r, ok := links[p]; ok {
			return r, nil
		}
		return p, nil
	}
	files := map[string]struct {
		uid  int
		mode os.FileMode
	}{
		"/opt/homebrew/Cellar/qemu/10.1.0/bin/qemu-system-aarch64": {501, 0o755},
		"/opt/homebrew/Cellar/luksmount/1.0.0/bin/luksmount":       {501, 0o755},
		"/usr/local/bin/luksmount":                                 {0, 0o755},
		"/tmp/qemu-system-aarch64":                                 {501, 0o777},
	}
	owner := func(p string) (int, os.FileMode, error) {
		f, ok := files[p]
		if !ok {
			return 0, 0, os.ErrNotExist
		}
		return f.uid, f.mode, nil
	}
	for _, tc := range []struct {
		qemu, self string
		mismatch   bool
		warn       string
	}{
		{"/opt/homebrew/bin/qemu-system-aarch64", "/opt/homebrew/bin/luksmount", false, ""},
		{"/opt/homebrew/bin/qemu-system-aarch64", "/usr/local/bin/luksmount", true, "belongs to uid 501 but /usr/local/bin/luksmount to uid 0"},
		{"/tmp/qemu-system-aarch64", "/opt/homebrew/bin/luksmount", true, "writable by group or others"},
	} {
		o, err := ownership(tc.qemu, tc.self, resolve, owner)
		if err != nil {
			t.Fatal(err)
		}
		if o.Mismatch() != tc.mismatch || !strings.Contains(o.Warning(), tc.warn) || (tc.warn == "") != (o.Warning() == "") {
			t.Errorf("%s vs %s: mismatch %v, warning %q", tc.qemu, tc.self, o.Mismatch(), o.Warning())
		}
	}
	if _, err := ownership("/nope", "/usr/local/bin/luksmount", resolve, owner); err == nil {
		t.Error("no error for a missing QEMU")
	}
}

// The real lookup: a QEMU the test user made is owned by the test user, as is the test binary.
func TestQEMUOwnershipReal(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "qemu-system-fake")
	if err := os.WriteFile(q, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if p, _ := exec.LookPath("qemu-system-fake"); p != q {
		t.Fatalf("lookup found %q, want %q", p, q)
	}
	o, err := QEMUOwnership("qemu-system-fake")
	if err != nil {
		t.Fatal(err)
	}
	if o.QEMUUID != os.Getuid() || o.Mismatch() {
		t.Errorf("ownership = %+v", o)
	}
}
