package mountpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeLabel(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, tc := range []struct{ in, fb, want string }{
		{"backup", "disk4s1", "backup"},
		{"  my drive  ", "", "my drive"},
		{"a/b/c", "", "a-b-c"},
		{"..hidden", "", "hidden"},
		{". . x", "", "x"},
		{"..", "disk4s1", "disk4s1"},
		{"", "disk4s1", "disk4s1"},
		{"", "", "LUKS"},
		{"\x00\x01\x7f", "/dev/", "-dev-"},
		{"tab\there\nnl", "", "tabherenl"},
		{"Cafe\u0301 Mu\u0308ller", "", "Café Müller"},
		{"bad\xffutf8", "", "badutf8"},
		{"\u00a0nbsp\u00a0", "", "nbsp"},
		{"日本語", "", "日本語"},
	} {
		if got := SanitizeLabel(tc.in, tc.fb); got != tc.want {
			t.Errorf("SanitizeLabel(%q, %q) = %q, want %q", tc.in, tc.fb, got, tc.want)
		}
	}
	got := SanitizeLabel(long, "")
	if len(got) > MaxNameBytes || !utf8.ValidString(got) || len(got) < MaxNameBytes-1 {
		t.Errorf("long label: %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func TestInvokingUser(t *testing.T) {
	env := map[string]string{"SUDO_UID": "501", "SUDO_GID": "20", "SUDO_USER": "ana"}
	u, ok := InvokingUser(func(k string) string { return env[k] })
	if !ok || u != (User{501, 20, "ana"}) {
		t.Errorf("got %+v %v", u, ok)
	}
	for _, e := range []map[string]string{{}, {"SUDO_UID": "0", "SUDO_GID": "0"}, {"SUDO_UID": "x", "SUDO_GID": "1"}} {
		if _, ok := InvokingUser(func(k string) string { return e[k] }); ok {
			t.Errorf("%v: ok, want not under sudo", e)
		}
	}
}

func TestDefaultParent(t *testing.T) {
	u := &User{UID: 1000, GID: 1000, Name: "ana"}
	for _, tc := range []struct {
		goos string
		u    *User
		want string
	}{
		{"darwin", u, "/Volumes"},
		{"darwin", nil, "/Volumes"},
		{"linux", u, "/media/ana"},
		{"linux", nil, "/run/luksmount/mnt"},
		{"linux", &User{UID: 1, Name: "../etc"}, "/run/luksmount/mnt"},
	} {
		if got := DefaultParent(tc.goos, tc.u); got != tc.want {
			t.Errorf("DefaultParent(%s, %+v) = %q, want %q", tc.goos, tc.u, got, tc.want)
		}
	}
}

func TestChoose(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "data-1"), nil, 0o644)
	os.Symlink("/nonexistent", filepath.Join(dir, "data-2")) // dangling link still counts
	got, err := Choose(OS{}, dir, "data")
	if err != nil || got != filepath.Join(dir, "data-3") {
		t.Errorf("Choose = %q, %v; want data-3", got, err)
	}
	got, _ = Choose(OS{}, dir, "other")
	if got != filepath.Join(dir, "other") {
		t.Errorf("Choose = %q", got)
	}
	// A suffix never pushes the name past 255 bytes.
	long := strings.Repeat("x", MaxNameBytes)
	os.Mkdir(filepath.Join(dir, long), 0o755)
	got, _ = Choose(OS{}, dir, long)
	if b := filepath.Base(got); len(b) != MaxNameBytes || !strings.HasSuffix(b, "-1") {
		t.Errorf("long: %q (%d bytes)", b, len(b))
	}
}

func TestCreateAndRemove(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "Volumes")
	m, err := Create(OS{}, parent, "my/drive", "disk4s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != filepath.Join(parent, "my-drive") {
		t.Errorf("path %q", m.Path)
	}
	m2, err := Create(OS{}, parent, "my/drive", "", nil)
	if err != nil || m2.Path != filepath.Join(parent, "my-drive-1") {
		t.Fatalf("second: %v %v", m2, err)
	}
	// Non-empty: left alone.
	os.WriteFile(filepath.Join(m.Path, "file"), []byte("x"), 0o644)
	if err := m.Remove(); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Remove non-empty: %v, want ErrNotEmpty", err)
	}
	if _, err := os.Stat(filepath.Join(m.Path, "file")); err != nil {
		t.Errorf("file gone: %v", err)
	}
	if err := m2.Remove(); err != nil {
		t.Errorf("Remove empty: %v", err)
	}
	if _, err := os.Lstat(m2.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("still there: %v", err)
	}
	if err := m2.Remove(); err != nil {
		t.Errorf("Remove twice: %v", err)
	}
	// Replaced by a file: not ours any more, left alone.
	os.WriteFile(m2.Path, nil, 0o644)
	if err := Reopen(OS{}, m2.Path).Remove(); err == nil {
		t.Error("removed a file that replaced the mount point")
	}
}

// fakeFS wraps OS and records chowns; mkdirRace makes the first Mkdir lose a race.
type fakeFS struct {
	OS
	chowns    []string
	mkdirRace bool
	chownErr  error
}

func (f *fakeFS) Mkdir(n string, p fs.FileMode) error {
	if f.mkdirRace {
		f.mkdirRace = false
		os.Mkdir(n, p) // another process got there first
		return &fs.PathError{Op: "mkdir", Path: n, Err: fs.ErrExist}
	}
	return os.Mkdir(n, p)
}

func (f *fakeFS) Chown(n string, uid, gid int) error {
	f.chowns = append(f.chowns, fmt.Sprintf("%s:%d:%d", filepath.Base(n), uid, gid))
	return f.chownErr
}

func TestCreateRaceAndOwner(t *testing.T) {
	parent := t.TempDir()
	f := &fakeFS{mkdirRace: true}
	m, err := Create(f, parent, "usb", "", &User{UID: 5, GID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != filepath.Join(parent, "usb-1") {
		t.Errorf("after losing the race: %q, want usb-1", m.Path)
	}
	if len(f.chowns) != 1 || f.chowns[0] != "usb-1:5:7" {
		t.Errorf("chowns = %q", f.chowns)
	}
	f = &fakeFS{chownErr: errors.New("EPERM")}
	if _, err := Create(f, parent, "x", "", &User{UID: 5, GID: 7}); err == nil {
		t.Fatal("chown failure ignored")
	}
	if _, err := os.Lstat(filepath.Join(parent, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("directory left behind after a failed chown")
	}
}
