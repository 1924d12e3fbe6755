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
		{"unpacked release archive", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "luksmount-1.0-linux-amd64", "share", "luksmount", "arm64"))
			return filepath.Join(r, "luksmount-1.0-linux-amd64", "bin", "luksmount"), "/"
		}, "luksmount-1.0-linux-amd64/share/luksmount/arm64"},
		{"installed layout wins over a build tree beside it", func(r string) (string, string) {
			writeImages(t, filepath.Join(r, "build", "arm64"))
			writeImages(t, filepath.Join(r, "share", "luksmount", "arm64"))
			return filepath.Join(r, "bin", "luksmount"), "/"
		}, "share/luksmount/arm64"},
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
				if !strings.HasPrefix(msg, "guest images for arm64 not found; "+Fix+" (looked in ") || strings.Contains(msg, "\n") {
					t.Errorf("message %q", msg)
				}
				if !strings.Contains(msg, filepath.Clean(filepath.Join(filepath.Dir(exe), "..", "share", "luksmount", "arm64"))) {
					t.Errorf("message %q does not list the places searched", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(root, tt.wantDir)
			wantSource := SourceCheckout
			if strings.Contains(tt.wantDir, "share/luksmount") {
				wantSource = SourceInstalled
			} else if strings.HasPrefix(tt.wantDir, "src/") {
				wantSource = SourceGoTest
			}
			if got.Source != wantSource {
				t.Errorf("source %q, want %q", got.Source, wantSource)
			}
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
	if err == nil && filepath.Clean(got.Dir) != filepath.Clean(want) {
		t.Errorf("found %s, want the source tree's %s", got.Dir, want)
	}
	if errors.As(err, &nf) {
		for _, d := range nf.Searched {
			if filepath.Clean(d) == filepath.Clean(want) {
				return
			}
		}
		t.Errorf("searched %q, not %s", nf.Searched, want)
	} else if err != nil {
		t.Fatal(err)
	}
}

// Homebrew links <prefix>/bin/luksmount to the Cellar; the images are in the Cellar's share/.
func TestFindThroughSymlinkedBinary(t *testing.T) {
	r := t.TempDir()
	cellar := filepath.Join(r, "Cellar", "luksmount", "1.0")
	writeImages(t, filepath.Join(cellar, "share", "luksmount", "arm64"))
	os.MkdirAll(filepath.Join(cellar, "bin"), 0o755)
	os.WriteFile(filepath.Join(cellar, "bin", "luksmount"), []byte("x"), 0o755)
	os.MkdirAll(filepath.Join(r, "bin"), 0o755)
	link := filepath.Join(r, "bin", "luksmount")
	os.Symlink("../Cellar/luksmount/1.0/bin/luksmount", link)
	exe, err := filepath.EvalSymlinks(link)
	if err != nil {
		t.Fatal(err)
	}
	got, err := find("arm64", exe, "/")
	if err != nil || got.Dir != filepath.Join(cellar, "share", "luksmount", "arm64") || got.Source != SourceInstalled {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestVerifySums(t *testing.T) {
	d := t.TempDir()
	writeImages(t, d)
	k, _ := fileSum(filepath.Join(d, KernelName))
	os.WriteFile(filepath.Join(d, SumsName), []byte(k+"  "+KernelName+"\n"+k+"  "+InitrdName+"\n"), 0o644)
	if err := VerifySums(d); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, InitrdName), []byte("changed"), 0o644)
	if err := VerifySums(d); err == nil || !strings.Contains(err.Error(), "initramfs.cpio.lz4 is damaged") {
		t.Errorf("damaged initramfs: %v", err)
	}
	os.WriteFile(filepath.Join(d, SumsName), []byte(k+"  "+KernelName+"\n"), 0o644)
	if err := VerifySums(d); err == nil || !strings.Contains(err.Error(), "does not list initramfs") {
		t.Errorf("unlisted initramfs: %v", err)
	}
	os.WriteFile(filepath.Join(d, SumsName), []byte("nonsense\n"), 0o644)
	if err := VerifySums(d); err == nil {
		t.Error("garbage SHA256SUMS accepted")
	}
	os.Remove(filepath.Join(d, SumsName))
	if err := VerifySums(d); err == nil {
		t.Error("missing SHA256SUMS accepted")
	}
}
