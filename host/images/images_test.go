package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeImages(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{KernelName, InitrdName} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(root string) (exe, wd string) // creates the layout
		wantDir string                             // relative to root; "" = not found
	}{
		{"built checkout", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "build", "arm64"))
			return filepath.Join(r, "bin", "luksmount"), "/"
		}, "build/arm64"},
		{"installed prefix", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "usr", "share", "luksmount", "arm64"))
			return filepath.Join(r, "usr", "bin", "luksmount"), "/"
		}, "usr/share/luksmount/arm64"},
		{"release archive", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "luksmount-1.0", "images", "arm64"))
			return filepath.Join(r, "luksmount-1.0", "luksmount"), "/"
		}, "luksmount-1.0/images/arm64"},
		{"checkout wins over archive layout", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "build", "arm64"))
			writeImages(t, filepath.Join(r, "bin", "images", "arm64"))
			return filepath.Join(r, "bin", "luksmount"), "/"
		}, "build/arm64"},
		{"go test from a package dir", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "src", "build", "arm64"))
			os.WriteFile(filepath.Join(r, "src", "go.mod"), []byte("module github.com/luksmount/luksmount\n\ngo 1.26\n"), 0o644)
			os.MkdirAll(filepath.Join(r, "src", "test", "vmboot"), 0o755)
			return filepath.Join(r, "tmp", "go-build123", "b001", "vmboot.test"), filepath.Join(r, "src", "test", "vmboot")
		}, "src/build/arm64"},
		{"other module's tree is ignored", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "src", "build", "arm64"))
			os.WriteFile(filepath.Join(r, "src", "go.mod"), []byte("module example.com/other\n"), 0o644)
			return filepath.Join(r, "tmp", "x.test"), filepath.Join(r, "src")
		}, ""},
		{"installed binary ignores the working tree", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "src", "build", "arm64"))
			os.WriteFile(filepath.Join(r, "src", "go.mod"), []byte("module github.com/luksmount/luksmount\n"), 0o644)
			return filepath.Join(r, "opt", "luksmount"), filepath.Join(r, "src")
		}, ""},
		{"only the kernel", func(r string) (string, string) {
			d := filepath.Join(r, "build", "arm64")
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, KernelName), []byte("x"), 0o644)
			return filepath.Join(r, "bin", "luksmount"), "/"
		}, ""},
		{"empty initramfs", func(r string) (string, string) {
			d := filepath.Join(r, "build", "arm64")
			writeImages(t, d)
			os.WriteFile(filepath.Join(d, InitrdName), nil, 0o644)
			return filepath.Join(r, "bin", "luksmount"), "/"
		}, ""},
		{"other arch only", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "build", "amd64"))
			return filepath.Join(r, "bin", "luksmount"), "/"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			exe, wd := tt.setup(root)
			got, err := find("arm64", exe, wd)
			if tt.wantDir == "" {
				if err == nil {
					t.Fatalf("found %+v, want not found", got)
				}
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("error %v is not ErrNotFound", err)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "guest images for arm64 not found; run `make images` (looked in ") || strings.Contains(msg, "\n") {
					t.Errorf("message %q", msg)
				}
				if !strings.Contains(msg, filepath.Join(filepath.Dir(exe), "images", "arm64")) {
					t.Errorf("message %q does not list the places searched", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(root, tt.wantDir)
			if got.Dir != want || got.Kernel != filepath.Join(want, KernelName) || got.Initrd != filepath.Join(want, InitrdName) || got.Arch != "arm64" {
				t.Errorf("got %+v, want dir %s", got, want)
			}
		})
	}
}

func TestFindBadArch(t *testing.T) {
	_, err := find("riscv64", "/bin/luksmount", "/")
	if err == nil || !strings.Contains(err.Error(), `"riscv64"`) {
		t.Errorf("error = %v", err)
	}
}

// Under go test, Find reaches the repository's build/<arch> (present or not, it must look there).
func TestFindLooksInSourceTree(t *testing.T) {
	wd, _ := os.Getwd()
	root := filepath.Join(wd, "..", "..")
	got, err := Find("amd64")
	want := filepath.Join(root, "build", "amd64")
	var nf *NotFoundError
	if err == nil && got.Dir != want {
		t.Errorf("found %s, want the source tree's %s", got.Dir, want)
	}
	if errors.As(err, &nf) {
		for _, d := range nf.Searched {
			if d == want {
				return
			}
		}
		t.Errorf("searched %q, not %s", nf.Searched, want)
	} else if err != nil {
		t.Fatal(err)
	}
}
