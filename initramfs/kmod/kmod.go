// Package kmod turns a list of kernel module names into the files to load, dependencies first,
// using the modules.dep and modules.builtin files of an unpacked kernel (the former made by
// `depmod -b`, since Debian's kernel packages ship none).
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrUnknownModule is returned when a requested module is neither a module file nor built in.
var ErrUnknownModule = errors.New("unknown kernel module")

// Index knows every module of one kernel and what each depends on.
type Index struct {
	deps    map[string][]string // module path (relative to /lib/modules/<kver>) -> dependency paths
	byName  map[string]string   // normalized name -> module path
	builtin map[string]bool     // normalized names of built-in (=y) modules
}

// Name returns the normalized module name of a path or name: base name without the .ko
// (and compression) suffix, with '-' folded to '_' as the kernel does.
func Name(p string) string {
	n := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	n = strings.TrimSuffix(n, ".ko")
	return strings.ReplaceAll(n, "-", "_")
}

// Parse reads a modules.dep ("path: dep dep ...") and a modules.builtin (one path per line).
func Parse(dep, builtin io.Reader) (*Index, error) {
	ix := &Index{deps: map[string][]string{}, byName: map[string]string{}, builtin: map[string]bool{}}
	s := bufio.NewScanner(dep)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; s.Scan(); line++ {
		text := strings.TrimSpace(s.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(text, ":")
		if !ok || mod == "" {
			return nil, fmt.Errorf("modules.dep line %d: want \"path: deps\", got %q", line, text)
		}
		ix.deps[mod] = strings.Fields(rest)
		ix.byName[Name(mod)] = mod
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cannot read modules.dep: %w", err)
	}
	for mod, deps := range ix.deps {
		for _, d := range deps {
			if _, ok := ix.deps[d]; !ok {
				return nil, fmt.Errorf("modules.dep: %s depends on %s, which has no entry", mod, d)
			}
		}
	}
	if builtin != nil {
		s = bufio.NewScanner(builtin)
		for s.Scan() {
			if t := strings.TrimSpace(s.Text()); t != "" {
				ix.builtin[Name(t)] = true
			}
		}
		if err := s.Err(); err != nil {
			return nil, fmt.Errorf("cannot read modules.builtin: %w", err)
		}
	}
	return ix, nil
}

// Load reads modules.dep and modules.builtin from dir (a /lib/modules/<kver> directory).
func Load(dir string) (*Index, error) {
	dep, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("cannot open modules.dep (run depmod -b first): %w", err)
	}
	defer dep.Close()
	builtin, err := os.Open(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("cannot open modules.builtin: %w", err)
	}
	defer builtin.Close()
	return Parse(dep, builtin)
}

// DependsOn lists every module mod needs loaded first (the transitive
// closure modules.dep gives), as paths relative to /lib/modules/<kver>.
func (ix *Index) DependsOn(mod string) []string { return append([]string(nil), ix.deps[mod]...) }

// Plan is the result of Resolve.
type Plan struct {
	Load    []string // module paths relative to /lib/modules/<kver>, dependencies first
	Builtin []string // requested names that are built into the kernel, so not loaded
}

// Resolve returns the modules to load for names, each after everything it depends on, every
// module once. Names that are built in are reported in Plan.Builtin; an unknown name is an error.
func (ix *Index) Resolve(names []string) (Plan, error) {
	var p Plan
	done := map[string]bool{}
	active := map[string]bool{}
	var visit func(mod string, chain []string) error
	visit = func(mod string, chain []string) error {
		if done[mod] {
			return nil
		}
		if active[mod] {
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, mod), " -> "))
		}
		active[mod] = true
		// modules.dep lists the transitive closure, nearest first; modprobe loads it in reverse.
		deps := ix.deps[mod]
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], append(chain, mod)); err != nil {
				return err
			}
		}
		delete(active, mod)
		done[mod] = true
		p.Load = append(p.Load, mod)
		return nil
	}
	for _, n := range names {
		name := Name(n)
		mod, ok := ix.byName[name]
		switch {
		case ok:
			if err := visit(mod, nil); err != nil {
				return Plan{}, err
			}
		case ix.builtin[name]:
			p.Builtin = append(p.Builtin, n)
		default:
			return Plan{}, fmt.Errorf("%w %q: not in modules.dep or modules.builtin", ErrUnknownModule, n)
		}
	}
	return p, nil
}
