//go:build linux && (amd64 || arm64)

package elfdeps

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"testing"
)

func hostResolver(root Sysroot) Resolver {
	if runtime.GOARCH == "arm64" {
		return Resolver{Root: root, Machine: elf.EM_AARCH64, LibDirs: []string{"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib"}}
	}
	return Resolver{Root: root, Machine: elf.EM_X86_64, LibDirs: []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}}
}

// lddSonames asks the real dynamic loader which libraries bin needs.
func lddSonames(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(\S+)\s+=>\s+/`).FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return names
}

const testBin = "/sbin/e2fsck" // e2fsprogs is a build dependency and e2fsck needs several libraries

func TestNeedsMatchesLdd(t *testing.T) {
	files, err := hostResolver(Sysroot{Roots: []string{"/"}}).Needs([]string{testBin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	interp := false
	for _, f := range files {
		if f.Path == "/lib64/ld-linux-x86-64.so.2" || f.Path == "/lib/ld-linux-aarch64.so.1" {
			interp = true
			continue
		}
		got = append(got, path.Base(f.Path))
	}
	sort.Strings(got)
	want := lddSonames(t, testBin)
	if !interp {
		t.Errorf("dynamic loader missing from %v", files)
	}
	if len(want) < 3 || !equal(got, want) {
		t.Errorf("Needs(%s) = %q; ldd says %q", testBin, got, want)
	}
}

// TestFixtureSysroot copies e2fsck and its libraries into a two-layer sysroot with the symlink
// shapes Debian packages use (absolute loader link, soname -> versioned file, symlinked dir).
func TestFixtureSysroot(t *testing.T) {
	host := hostResolver(Sysroot{Roots: []string{"/"}})
	files, err := host.Needs([]string{testBin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bins, libs := t.TempDir(), t.TempDir()
	cp(t, testBin, filepath.Join(bins, "sbin/e2fsck"))
	libdir := host.LibDirs[0]
	for _, f := range files {
		if path.Dir(f.Path) != libdir && path.Dir(f.Path) != host.LibDirs[1] {
			// the loader: store it in the lib dir and point its PT_INTERP path at it absolutely
			cp(t, f.Host, filepath.Join(libs, libdir, path.Base(f.Path)))
			mkdir(t, filepath.Join(libs, path.Dir(f.Path)))
			if err := os.Symlink(path.Join(libdir, path.Base(f.Path)), filepath.Join(libs, f.Path)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// soname -> versioned file, relative link, under /usr/lib reached through a dir symlink
		cp(t, f.Host, filepath.Join(libs, "usr/real", path.Base(f.Path)+".9.9"))
		mkdir(t, filepath.Join(libs, "usr/real"))
		if err := os.Symlink(path.Base(f.Path)+".9.9", filepath.Join(libs, "usr/real", path.Base(f.Path))); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(t, filepath.Join(libs, "usr/lib"))
	if err := os.Symlink("../real", filepath.Join(libs, host.LibDirs[1])); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	r := host
	r.Root = Sysroot{Roots: []string{bins, libs}}
	got, err := r.Needs([]string{"/sbin/e2fsck"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("fixture resolved %d files; host resolved %d:\n%v\n%v", len(got), len(files), got, files)
	}
	for _, f := range got {
		if _, err := elf.Open(f.Host); err != nil {
			t.Errorf("%s -> %s is not ELF: %v", f.Path, f.Host, err)
		}
	}

	// A missing library must be reported by name.
	victim := ""
	for _, f := range files {
		if path.Base(f.Path) == "libext2fs.so.2" {
			victim = path.Base(f.Path)
		}
	}
	if victim == "" {
		t.Fatalf("e2fsck does not need libext2fs.so.2? %v", files)
	}
	os.Remove(filepath.Join(libs, "usr/real", victim))
	if _, err := r.Needs([]string{"/sbin/e2fsck"}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("with %s removed: err = %v; want ErrNotFound", victim, err)
	}
}

func TestStaticBinaryNeedsNothing(t *testing.T) {
	exe, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is a build dependency (run `make deps`): %v", err)
	}
	files, err := hostResolver(Sysroot{Roots: []string{"/"}}).Needs([]string{exe}, nil)
	if err != nil || len(files) != 0 {
		t.Errorf("Needs(static busybox) = %v, %v; want nothing", files, err)
	}
}

func TestWrongMachine(t *testing.T) {
	r := hostResolver(Sysroot{Roots: []string{"/"}})
	r.Machine = elf.EM_RISCV
	if _, err := r.Needs([]string{testBin}, nil); err == nil {
		t.Error("binary for the host machine accepted for riscv")
	}
}

func TestSymlinkLoop(t *testing.T) {
	d := t.TempDir()
	os.Symlink("b", filepath.Join(d, "a"))
	os.Symlink("a", filepath.Join(d, "b"))
	if _, _, err := (Sysroot{Roots: []string{d}}).Resolve("/a"); err == nil {
		t.Error("symlink loop resolved")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func cp(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Dir(to))
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// A dlopened library is found by soname and brings its own needs, without a second copy of the
// loader that libc names in DT_NEEDED.
func TestDlopened(t *testing.T) {
	r := hostResolver(Sysroot{Roots: []string{"/"}})
	files, err := r.Needs([]string{testBin}, []string{"libgcc_s.so.1"})
	if err != nil {
		t.Fatal(err)
	}
	gcc, loaders := false, 0
	for _, f := range files {
		switch path.Base(f.Path) {
		case "libgcc_s.so.1":
			gcc = true
		case "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1":
			loaders++
		}
	}
	if !gcc || loaders != 1 {
		t.Errorf("Needs with dlopened libgcc_s: gcc=%v loaders=%d in %v", gcc, loaders, files)
	}
	if _, err := r.Needs(nil, []string{"libnosuch.so.9"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing dlopened lib: err = %v; want ErrNotFound", err)
	}
}
