package session

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRuntimeDirs(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	macTmp := "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/"
	me := User{UID: 501, GID: 20}
	viaSudo := User{UID: 501, GID: 20, Sudo: true}
	for _, tc := range []struct {
		name string
		goos string
		euid int
		u    User
		env  func(string) string
		tmp  string
		want []string
	}{
		{"mac user: /tmp, not $TMPDIR", "darwin", 501, me, env("XDG_RUNTIME_DIR", "/x"), macTmp, []string{"/tmp/luksmount-501", "/var/run/luksmount"}},
		{"mac sudo", "darwin", 0, viaSudo, env(), "/tmp", []string{"/var/run/luksmount", "/tmp/luksmount-501"}},
		{"linux user with XDG", "linux", 1000, User{UID: 1000}, env("XDG_RUNTIME_DIR", "/run/user/1000"), "/tmp", []string{"/run/user/1000/luksmount", "/run/luksmount"}},
		{"linux sudo", "linux", 0, User{UID: 1000, Sudo: true}, env("XDG_RUNTIME_DIR", "/run/user/0"), "/tmp", []string{"/run/luksmount", "/tmp/luksmount-1000"}},
		{"override", "darwin", 501, me, env(EnvRuntimeDir, "/tmp/lm"), macTmp, []string{"/tmp/lm"}},
	} {
		if got := runtimeDirs(tc.goos, tc.euid, tc.u, tc.env, tc.tmp); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The deepest socket of the longest session id fits sun_path in every default directory, and a
// path that would not fit gets a one-line error naming the override.
func TestSocketPathsFit(t *testing.T) {
	id := ID("/Users/someone/Disk Images/" + strings.Repeat("x", 60) + ".img")
	if len(id) != 41 {
		t.Fatalf("longest id is %d bytes, the test assumes 41", len(id))
	}
	for _, dir := range []string{"/tmp/luksmount-4294967294", "/var/run/luksmount", "/run/luksmount", "/run/user/4294967294/luksmount"} {
		goos := "linux"
		if strings.HasPrefix(dir, "/tmp") || strings.HasPrefix(dir, "/var") {
			goos = "darwin"
		}
		if err := CheckSocketPath(goos, dir+"/"+id+LongestSocketSuffix); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
	old := "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/luksmount-501/" + id + LongestSocketSuffix
	err := CheckSocketPath("darwin", old)
	if err == nil || !strings.Contains(err.Error(), "more than the 103") || !strings.Contains(err.Error(), EnvRuntimeDir) {
		t.Errorf("the old $TMPDIR path (%d bytes): %v", len(old), err)
	}
	p105 := "/" + strings.Repeat("d", 104)
	if CheckSocketPath("linux", p105) != nil || CheckSocketPath("darwin", p105) == nil || CheckSocketPath("darwin", p105[:103]) != nil {
		t.Error("limits are not 103 bytes on darwin, 107 on linux")
	}
}

// Someone else's (or a world-writable) /tmp/luksmount-UID is refused, not used.
func TestRuntimeRootMustBeOurs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "luksmount-1")
	r := &Registry{Dirs: []string{root}, UID: -1, GID: -1}
	s, err := r.Create(State{Target: "/dev/x"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Chmod(root, 0o777)
	if _, err := r.Create(State{Target: "/dev/x"}); err == nil || !strings.Contains(err.Error(), "writable only by it") {
		t.Errorf("world-writable root: %v", err)
	}
	os.Remove(root)
	os.Symlink(t.TempDir(), root)
	if _, err := r.Create(State{Target: "/dev/x"}); err == nil || !strings.Contains(err.Error(), "must be a directory") {
		t.Errorf("symlinked root: %v", err)
	}
}
