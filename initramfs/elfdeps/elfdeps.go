// Package elfdeps finds, inside an unpacked sysroot, the shared libraries and the dynamic loader
// that ELF executables need, walking DT_NEEDED transitively the way ld.so searches its default
// directories. It reads ELF headers with debug/elf and never runs the binaries, so it works for
// foreign architectures.
package elfdeps

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotFound is returned when a file or a needed library is not in the sysroot.
var ErrNotFound = errors.New("not found in sysroot")

// Sysroot is a file tree made of several unpacked package roots overlaid in order. Paths are
// absolute paths inside the tree ("/lib/x86_64-linux-gnu/libc.so.6").
type Sysroot struct {
	Roots []string // host directories, searched in order
}

// Resolve follows symlinks inside the sysroot (absolute links stay inside it) and returns the
// final path inside the tree and the host file that holds it.
func (s Sysroot) Resolve(p string) (inTree, host string, err error) {
	p = path.Clean("/" + p)
	for hops := 0; hops < 40; hops++ {
		h, fi, err := s.lstat(p)
		if err != nil {
			return "", "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, h, nil
		}
		target, err := os.Readlink(h)
		if err != nil {
			return "", "", fmt.Errorf("cannot read link %s: %w", p, err)
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", "", fmt.Errorf("too many levels of symbolic links at %s", p)
}

// lstat finds p in the first root that has it. Symlinked parent directories are followed.
func (s Sysroot) lstat(p string) (string, fs.FileInfo, error) {
	dir, base := path.Split(p)
	if dir != "/" {
		d, _, err := s.Resolve(strings.TrimSuffix(dir, "/"))
		if err != nil {
			return "", nil, err
		}
		dir = d
	}
	for _, r := range s.Roots {
		h := filepath.Join(r, filepath.FromSlash(path.Join(dir, base)))
		if fi, err := os.Lstat(h); err == nil {
			return h, fi, nil
		}
	}
	return "", nil, fmt.Errorf("%s: %w", p, ErrNotFound)
}

// File is one file the image needs: Path inside the image and Host, the file with its contents.
type File struct {
	Path string
	Host string
}

// Resolver walks DT_NEEDED for one target machine.
type Resolver struct {
	Root    Sysroot
	Machine elf.Machine // binaries and libraries for other machines are rejected / skipped
	LibDirs []string    // search order, e.g. /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu
}

// Needs returns the dynamic loader and every library the executables at bins (paths inside the
// sysroot) need, transitively, sorted by path, plus the dlopened libraries (sonames, which
// DT_NEEDED does not reveal) and what they need. Static executables need nothing.
func (r Resolver) Needs(bins []string, dlopened []string) ([]File, error) {
	seen := map[string]File{}
	queue := []string{}
	for _, l := range dlopened {
		queue = append(queue, "dlopen\x00"+l)
	}
	for _, b := range bins {
		_, host, err := r.Root.Resolve(b)
		if err != nil {
			return nil, fmt.Errorf("cannot find %s: %w", b, err)
		}
		f, err := r.open(host, b)
		if err != nil {
			return nil, err
		}
		interp, err := interpreter(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", b, err)
		}
		if interp != "" {
			_, ih, err := r.Root.Resolve(interp)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s needs dynamic loader %s: %w", b, interp, err)
			}
			// The loader also satisfies DT_NEEDED entries for its soname (libc needs it).
			seen[interp] = File{Path: interp, Host: ih}
			seen[path.Base(interp)] = seen[interp]
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot read DT_NEEDED of %s: %w", b, err)
		}
		for _, n := range needed {
			queue = append(queue, b+"\x00"+n)
		}
	}
	for len(queue) > 0 {
		who, lib, _ := strings.Cut(queue[0], "\x00")
		queue = queue[1:]
		if _, ok := seen[lib]; ok {
			continue
		}
		file, more, err := r.find(lib)
		if err != nil {
			return nil, fmt.Errorf("%s needs %s: %w", who, lib, err)
		}
		seen[lib] = file
		for _, n := range more {
			queue = append(queue, file.Path+"\x00"+n)
		}
	}
	out := make([]File, 0, len(seen))
	byPath := map[string]bool{}
	for _, f := range seen {
		if !byPath[f.Path] {
			byPath[f.Path] = true
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// find searches the library directories for name (or takes it literally if it has a slash),
// skipping files for another machine as ld.so does.
func (r Resolver) find(name string) (File, []string, error) {
	cands := []string{name}
	if !strings.Contains(name, "/") {
		cands = cands[:0]
		for _, d := range r.LibDirs {
			cands = append(cands, path.Join(d, name))
		}
	}
	for _, c := range cands {
		_, host, err := r.Root.Resolve(c)
		if err != nil {
			continue
		}
		f, err := elf.Open(host)
		if err != nil {
			continue
		}
		if f.Machine != r.Machine {
			f.Close()
			continue
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return File{}, nil, fmt.Errorf("cannot read DT_NEEDED of %s: %w", c, err)
		}
		return File{Path: c, Host: host}, needed, nil
	}
	return File{}, nil, fmt.Errorf("%s (searched %s): %w", name, strings.Join(r.LibDirs, ", "), ErrNotFound)
}

func (r Resolver) open(host, name string) (*elf.File, error) {
	f, err := elf.Open(host)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF file: %w", name, err)
	}
	if f.Machine != r.Machine {
		f.Close()
		return nil, fmt.Errorf("%s is built for %v, want %v", name, f.Machine, r.Machine)
	}
	return f, nil
}

func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("cannot read PT_INTERP: %w", err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}
