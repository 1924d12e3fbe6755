// Package initsys does what PID 1 owes the kernel: base mounts, module loading, reaping orphans,
// noticing the power button and powering off. Parsers here are platform-neutral; the system calls
// live in initsys_linux.go.
package initsys

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is returned by the fallbacks on systems other than Linux: the agent only runs in
// the Linux guest.
var ErrUnsupported = errors.New("initsys: only supported in the Linux guest")

// ModulesFile lists the kernel modules to load, one absolute .ko path per line, in load order,
// each optionally followed by ":" and the paths of the modules it needs loaded first.
const ModulesFile = "/etc/luksmount/modules"

// Module is one line of a modules list.
type Module struct {
	Path string
	Deps []string // modules that must be loaded first
}

// ParseModules reads a modules list and returns the paths in load order.
func ParseModules(r io.Reader) ([]string, error) {
	mods, err := ParseModuleDeps(r)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(mods))
	for i, m := range mods {
		out[i] = m.Path
	}
	return out, nil
}

// ParseModuleDeps reads a modules list: "path" or "path: dep dep" per line, absolute paths;
// blank lines and # comments are skipped. A relative path is an error (the image builder writes
// absolute ones).
func ParseModuleDeps(r io.Reader) ([]Module, error) {
	var out []Module
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, deps, _ := strings.Cut(line, ":")
		m := Module{Path: strings.TrimSpace(p), Deps: strings.Fields(deps)}
		for _, q := range append([]string{m.Path}, m.Deps...) {
			if !strings.HasPrefix(q, "/") {
				return nil, fmt.Errorf("modules list line %d: %q is not an absolute path", n, q)
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read modules list: %w", err)
	}
	return out, nil
}

// SplitModules splits mods into those early selects plus everything they need, and the rest
// (each list keeps its order).
func SplitModules(mods []Module, early func(path string) bool) (first, rest []Module) {
	need := map[string]bool{}
	for _, m := range mods {
		if early(m.Path) {
			need[m.Path] = true
			for _, d := range m.Deps {
				need[d] = true
			}
		}
	}
	for _, m := range mods {
		if need[m.Path] {
			first = append(first, m)
		} else {
			rest = append(rest, m)
		}
	}
	return first, rest
}

// Cmdline is the kernel command line split into words; key=value words are also in Values.
type Cmdline struct {
	Words  []string
	Values map[string]string
}

// ParseCmdline splits /proc/cmdline. Quoting is not interpreted: the host passes simple words.
func ParseCmdline(s string) Cmdline {
	c := Cmdline{Values: map[string]string{}}
	for _, w := range strings.Fields(s) {
		c.Words = append(c.Words, w)
		k, v, _ := strings.Cut(w, "=")
		c.Values[k] = v
	}
	return c
}

// Has reports whether key appears, bare or as key=value.
func (c Cmdline) Has(key string) bool {
	_, ok := c.Values[key]
	return ok
}

// Flag reports whether key is present and not explicitly off (key, key=1, key=on; not key=0).
func (c Cmdline) Flag(key string) bool {
	v, ok := c.Values[key]
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "0", "off", "no", "false":
		return false
	}
	return true
}

// ModuleResult says what loading one module did.
type ModuleResult struct {
	Path    string
	Loaded  bool  // newly loaded
	Present bool  // already loaded or built in (EEXIST)
	Skipped error // no such device (e.g. aesni-intel without AES-NI): harmless
	Err     error // anything else
	Took    time.Duration
}

// PowerOffMode picks how to stop the VM: POWER_OFF needs ACPI (x86) or PSCI (arm64); without them
// the kernel only halts and QEMU would hang, so restart instead (QEMU runs with -no-reboot and exits).
func PowerOffMode(goarch string, haveACPI bool) string {
	if haveACPI || goarch == "arm64" {
		return "poweroff"
	}
	return "restart"
}

// loadParallel runs load for every module at once, each after the modules it depends on (those
// of them in mods) are done. Results are in mods' order.
func loadParallel(mods []Module, load func(path string) ModuleResult) []ModuleResult {
	out := make([]ModuleResult, len(mods))
	done := make(map[string]chan struct{}, len(mods))
	for _, m := range mods {
		done[m.Path] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, m := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[m.Path])
			for _, d := range m.Deps {
				if ch, ok := done[d]; ok {
					<-ch
				}
			}
			out[i] = load(m.Path)
		}()
	}
	wg.Wait()
	return out
}
