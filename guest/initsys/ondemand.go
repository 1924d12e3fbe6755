package initsys

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// OnDemandFile lists the modules each optional feature needs ("feature: path path ..."), written
// by the image builder; features whose modules are built in or loaded at boot have no paths.
const OnDemandFile = "/etc/luksmount/modules.ondemand"

// ErrNoFeature means the image has no modules for a feature: the guest cannot provide it.
var ErrNoFeature = errors.New("not in this guest image")

// ParseOnDemand reads an on-demand modules table.
func ParseOnDemand(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, paths, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("on-demand modules line %d: want \"feature: paths\", got %q", n, line)
		}
		list := strings.Fields(paths)
		for _, p := range list {
			if !strings.HasPrefix(p, "/") {
				return nil, fmt.Errorf("on-demand modules line %d: %q is not an absolute path", n, p)
			}
		}
		out[name] = list
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read on-demand modules: %w", err)
	}
	return out, nil
}

// Features loads on-demand module sets, each at most once.
type Features struct {
	Table map[string][]string
	Load  func(paths []string) []ModuleResult // LoadModules

	mu   sync.Mutex
	done map[string]bool
}

// Need makes sure every named feature is available, loading the missing ones in parallel (each
// feature's list is in dependency order; a module two features share loads once, the other
// finit_module waits for it and sees EEXIST). It returns how many modules it loaded. Unknown
// features are reported together in an error matching ErrNoFeature, and nothing is loaded.
func (f *Features) Need(names ...string) (int, error) {
	var missing, todo []string
	f.mu.Lock()
	for _, n := range names {
		if _, ok := f.Table[n]; !ok {
			missing = append(missing, n)
		} else if !f.done[n] {
			todo = append(todo, n)
		}
	}
	f.mu.Unlock()
	if len(missing) > 0 {
		sort.Strings(missing)
		return 0, fmt.Errorf("%s: %w", strings.Join(missing, ", "), ErrNoFeature)
	}
	type res struct {
		name   string
		loaded int
		err    error
	}
	ch := make(chan res, len(todo))
	for _, n := range todo {
		go func(n string) {
			r := res{name: n}
			for _, m := range f.Load(f.Table[n]) {
				switch {
				case m.Loaded:
					r.loaded++
				case m.Present, m.Skipped != nil:
				default:
					r.err = errors.Join(r.err, m.Err)
				}
			}
			ch <- r
		}(n)
	}
	total := 0
	var errs []error
	for range todo {
		r := <-ch
		total += r.loaded
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
			continue
		}
		f.mu.Lock()
		if f.done == nil {
			f.done = map[string]bool{}
		}
		f.done[r.name] = true
		f.mu.Unlock()
	}
	return total, errors.Join(errs...)
}
