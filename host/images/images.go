// Package images finds the guest kernel and initramfs for an architecture without any flag or
// environment variable: in the installed layout next to the executable (<prefix>/bin/luksmount
// and <prefix>/share/luksmount/<arch>/, as a release archive and Homebrew lay it out), then in
// a built checkout (bin/ next to build/<arch>/), then in the source tree for go test/run.
package images

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names inside an image directory (as `make images` writes them to build/<arch>/).
const (
	KernelName = "vmlinuz"
	InitrdName = "initramfs.cpio.lz4"
	SumsName   = "SHA256SUMS" // sha256sum format, written by the image builder
)

// Where the images were found, from most to least trusted.
const (
	SourceInstalled = "installed" // <prefix>/share/luksmount/<arch>
	SourceCheckout  = "checkout"  // a built source checkout's build/<arch>
	SourceGoTest    = "go test"   // the source tree, for binaries go test/go run built
)

// modulePath identifies luksmount's own source tree when walking up from the working directory.
const modulePath = "github.com/luksmount/luksmount"

// Images is a kernel and initramfs pair for one architecture.
type Images struct {
	Arch   string
	Dir    string // the directory both were found in
	Source string // SourceInstalled, SourceCheckout or SourceGoTest
	Kernel string // absolute path of vmlinuz
	Initrd string // absolute path of initramfs.cpio.lz4
}

// ErrNotFound is matched (errors.Is) by *NotFoundError.
var ErrNotFound = errors.New("guest images not found")

// NotFoundError lists where Find looked.
type NotFoundError struct {
	Arch     string
	Searched []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("guest images for %s not found; %s (looked in %s)", e.Arch, Fix, strings.Join(e.Searched, ", "))
}

// Fix is what to do when the images are missing or damaged (doctor and mount say the same).
const Fix = "reinstall luksmount (`brew reinstall luksmount`, or unpack the release archive again with its share/ directory); in a source checkout run `make images`"

// Is makes errors.Is(err, ErrNotFound) work.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Find returns the images for arch (GOARCH spelling: amd64, arm64).
func Find(arch string) (*Images, error) {
	exe, err := os.Executable()
	if err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
	}
	wd, _ := os.Getwd()
	return find(arch, exe, wd)
}

// Candidate is one place Find looks.
type Candidate struct {
	Dir    string
	Source string
}

// Dirs lists the candidate directories for arch in the order Find tries them. exe must already
// have its symlinks resolved (Homebrew's bin/luksmount links into the Cellar, whose share/ holds
// the images).
func Dirs(arch, exe, wd string) []Candidate {
	var dirs []Candidate
	if exe != "" {
		bin := filepath.Dir(exe)
		dirs = append(dirs,
			Candidate{filepath.Clean(filepath.Join(bin, "..", "share", "luksmount", arch)), SourceInstalled},
			Candidate{filepath.Clean(filepath.Join(bin, "..", "build", arch)), SourceCheckout},
		)
	}
	// go test and go run build into a temporary directory, so look in the source tree instead.
	if wd != "" && exe != "" && isGoToolBinary(exe) {
		if root := sourceRoot(wd); root != "" {
			dirs = append(dirs, Candidate{filepath.Join(root, "build", arch), SourceGoTest})
		}
	}
	return dirs
}

func find(arch, exe, wd string) (*Images, error) {
	switch arch {
	case "amd64", "arm64":
	default:
		return nil, fmt.Errorf("no guest images exist for architecture %q; luksmount supports amd64 and arm64", arch)
	}
	dirs := Dirs(arch, exe, wd)
	for _, c := range dirs {
		k, i := filepath.Join(c.Dir, KernelName), filepath.Join(c.Dir, InitrdName)
		if usable(k) && usable(i) {
			return &Images{Arch: arch, Dir: c.Dir, Source: c.Source, Kernel: k, Initrd: i}, nil
		}
	}
	searched := make([]string, len(dirs))
	for i, c := range dirs {
		searched[i] = c.Dir
	}
	return nil, &NotFoundError{Arch: arch, Searched: searched}
}

func usable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Size() > 0
}

func isGoToolBinary(exe string) bool {
	return strings.HasSuffix(filepath.Base(exe), ".test") || strings.Contains(exe, string(filepath.Separator)+"go-build")
}

// sourceRoot walks up from dir to the directory whose go.mod declares luksmount's module.
func sourceRoot(dir string) string {
	for {
		if declaresModule(filepath.Join(dir, "go.mod")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func declaresModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == modulePath
		}
	}
	return false
}
