// Package images finds the guest kernel and initramfs for an architecture without any flag or
// environment variable: next to the installed executable, or in the source tree for go test/run.
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
	InitrdName = "initramfs.cpio.gz"
)

// modulePath identifies luksmount's own source tree when walking up from the working directory.
const modulePath = "github.com/luksmount/luksmount"

// Images is a kernel and initramfs pair for one architecture.
type Images struct {
	Arch   string
	Dir    string // the directory both were found in
	Kernel string // absolute path of vmlinuz
	Initrd string // absolute path of initramfs.cpio.gz
}

// ErrNotFound is matched (errors.Is) by *NotFoundError.
var ErrNotFound = errors.New("guest images not found")

// NotFoundError lists where Find looked.
type NotFoundError struct {
	Arch     string
	Searched []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("guest images for %s not found; run `make images` (looked in %s)", e.Arch, strings.Join(e.Searched, ", "))
}

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

// Dirs lists the candidate directories for arch in the order Find tries them.
func Dirs(arch, exe, wd string) []string {
	var dirs []string
	if exe != "" {
		bin := filepath.Dir(exe)
		dirs = append(dirs,
			filepath.Join(bin, "..", "build", arch),              // bin/luksmount in a built checkout
			filepath.Join(bin, "..", "share", "luksmount", arch), // /usr/local/bin + /usr/local/share
			filepath.Join(bin, "images", arch),                   // an unpacked release archive
		)
	}
	// go test and go run build into a temporary directory, so look in the source tree instead.
	if wd != "" && exe != "" && isGoToolBinary(exe) {
		if root := sourceRoot(wd); root != "" {
			dirs = append(dirs, filepath.Join(root, "build", arch))
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
	for _, d := range dirs {
		d = filepath.Clean(d)
		k, i := filepath.Join(d, KernelName), filepath.Join(d, InitrdName)
		if usable(k) && usable(i) {
			return &Images{Arch: arch, Dir: d, Kernel: k, Initrd: i}, nil
		}
	}
	searched := make([]string, len(dirs))
	for i, d := range dirs {
		searched[i] = filepath.Clean(d)
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
