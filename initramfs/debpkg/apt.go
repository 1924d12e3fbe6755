package debpkg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// ErrNoPackage is returned by Apt.Show when apt knows no such package (or version).
var ErrNoPackage = errors.New("no such package in apt")

// Stanza is one package record from apt-cache show: field name -> value.
type Stanza map[string]string

// Apt is the part of apt the resolver and downloader use; tests substitute a fake.
type Apt interface {
	// Show returns the record for spec: "name:arch" (the candidate) or "name:arch=version".
	Show(spec string) (Stanza, error)
	// Download fetches specs ("name:arch=version") into dir, as apt names them
	// (name_version_arch.deb, with ':' in the version written %3a).
	Download(dir string, specs ...string) error
}

// SystemApt runs the host's apt-cache and apt-get.
type SystemApt struct{}

// Show runs apt-cache show.
func (SystemApt) Show(spec string) (Stanza, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("apt-cache", "show", "--no-all-versions", spec)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	st := ParseStanza(out.String())
	if err != nil || st["Package"] == "" {
		return nil, fmt.Errorf("%w: %s (%s)", ErrNoPackage, spec, firstLine(errb.String()))
	}
	return st, nil
}

// ShowMany runs one apt-cache show for all specs ("name:arch", no versions) and returns the
// records found keyed by spec; apt skips unknown names. One call costs about as much as one
// Show, because apt-cache spends its time loading the package lists.
func (SystemApt) ShowMany(specs []string) (map[string]Stanza, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, specs...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && out.Len() == 0 {
		return nil, fmt.Errorf("apt-cache show: %s: %w", firstLine(errb.String()), err)
	}
	found := map[string]Stanza{}
	for _, rec := range strings.Split(out.String(), "\n\n") {
		st := ParseStanza(rec)
		if st["Package"] != "" {
			found[st["Package"]+":"+st["Architecture"]] = st
		}
	}
	return found, nil
}

// Download runs apt-get download in dir.
func (SystemApt) Download(dir string, specs ...string) error {
	var errb bytes.Buffer
	cmd := exec.Command("apt-get", append([]string{"download", "-q"}, specs...)...)
	cmd.Dir, cmd.Stderr = dir, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get download: %s: %w", firstLine(errLines(errb.String())), err)
	}
	return nil
}

// errLines keeps apt's "E:" lines (it also prints harmless "W:" warnings).
func errLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "E:") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return s
	}
	return strings.Join(out, "\n")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// ParseStanza parses the first RFC 822-style record in s.
func ParseStanza(s string) Stanza {
	st := Stanza{}
	var key string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			if len(st) > 0 {
				break
			}
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && key != "" {
			st[key] += "\n" + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		key = k
		st[k] = strings.TrimSpace(v)
	}
	return st
}

// Deps returns the alternatives of each Pre-Depends and Depends clause, package names only
// (version constraints and :any qualifiers dropped).
func (s Stanza) Deps() [][]string {
	var out [][]string
	for _, field := range []string{"Pre-Depends", "Depends"} {
		for _, clause := range strings.Split(s[field], ",") {
			var alts []string
			for _, a := range strings.Split(clause, "|") {
				a = strings.TrimSpace(a)
				if i := strings.IndexAny(a, " ([<"); i >= 0 {
					a = a[:i]
				}
				a, _, _ = strings.Cut(a, ":")
				if a != "" {
					alts = append(alts, a)
				}
			}
			if len(alts) > 0 {
				out = append(out, alts)
			}
		}
	}
	return out
}

// Want says what to pin for one image variant on one architecture.
type Want struct {
	Variant string
	Arch    string
	// Kernel is a kernel metapackage (linux-image-cloud-amd64); the pin is the versioned image
	// package its Depends names, whose name carries the kernel ABI.
	Kernel string
	// Roots are packages pinned with everything they Depend on, except Exclude and what only
	// excluded packages pull in.
	Roots   []string
	Exclude []string
}

// Resolve asks apt for the current candidate of every package each Want needs and returns the
// merged pins (a package used by several variants is pinned once, listing all of them).
func Resolve(apt Apt, wants []Want) ([]Pin, error) {
	apt = &memoApt{Apt: apt, m: map[string]memoEntry{}}
	merged := map[string]*Pin{}
	add := func(p Pin, variant string) error {
		key := p.Arch + " " + p.Name
		if m, ok := merged[key]; ok {
			if m.Version != p.Version || m.SHA256 != p.SHA256 {
				return fmt.Errorf("%s resolved to two versions (%s, %s)", key, m.Version, p.Version)
			}
			if !m.Uses(variant) {
				m.Variants = append(m.Variants, variant)
				sort.Strings(m.Variants)
			}
			return nil
		}
		p.Variants = []string{variant}
		merged[key] = &p
		return nil
	}
	for _, w := range wants {
		pins, err := resolveOne(apt, w)
		if err != nil {
			return nil, fmt.Errorf("variant %s (%s): %w", w.Variant, w.Arch, err)
		}
		for _, p := range pins {
			if err := add(p, w.Variant); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Pin, 0, len(merged))
	for _, p := range merged {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Arch+" "+out[i].Name < out[j].Arch+" "+out[j].Name })
	return out, nil
}

func resolveOne(apt Apt, w Want) ([]Pin, error) {
	var pins []Pin
	if w.Kernel != "" {
		meta, err := apt.Show(w.Kernel + ":" + w.Arch)
		if err != nil {
			return nil, err
		}
		deps := meta.Deps()
		if len(deps) == 0 || !strings.HasPrefix(deps[0][0], "linux-image-") {
			return nil, fmt.Errorf("kernel metapackage %s does not depend on a linux-image package (Depends: %q)", w.Kernel, meta["Depends"])
		}
		img, err := apt.Show(deps[0][0] + ":" + w.Arch + "=" + meta["Version"])
		if err != nil {
			return nil, fmt.Errorf("kernel %s (from %s): %w", deps[0][0], w.Kernel, err)
		}
		p, err := pinOf(img, w.Arch)
		if err != nil {
			return nil, err
		}
		pins = append(pins, p)
	}
	exclude := map[string]bool{}
	for _, e := range w.Exclude {
		exclude[e] = true
	}
	done := map[string]bool{}
	level := append([]string(nil), w.Roots...)
	// Breadth first, one level at a time, so a batching Apt answers each level in one call.
	for len(level) > 0 {
		prefetch(apt, level, w.Arch)
		var clauses [][]string
		var from []string
		for _, name := range level {
			if done[name] {
				continue
			}
			done[name] = true
			st, err := show(apt, name, w.Arch)
			if err != nil {
				return nil, err
			}
			p, err := pinOf(st, w.Arch)
			if err != nil {
				return nil, err
			}
			pins = append(pins, p)
			for _, c := range st.Deps() {
				clauses = append(clauses, c)
				from = append(from, name)
			}
		}
		var alts []string
		for _, c := range clauses {
			alts = append(alts, c...)
		}
		prefetch(apt, alts, w.Arch)
		level = nil
	clauses:
		for i, alts := range clauses {
			for _, a := range alts {
				if exclude[a] || done[a] {
					continue clauses
				}
				if _, err := show(apt, a, w.Arch); err == nil {
					level = append(level, a)
					continue clauses
				}
			}
			return nil, fmt.Errorf("%s depends on %s, which apt cannot provide", from[i], strings.Join(alts, " | "))
		}
	}
	return pins, nil
}

// prefetch asks a batching Apt about names (for arch and as arch-independent) in one call.
func prefetch(apt Apt, names []string, arch string) {
	if m, ok := apt.(*memoApt); ok {
		var specs []string
		for _, n := range names {
			specs = append(specs, n+":"+arch, n+":all")
		}
		m.prefetch(specs)
	}
}

// show finds name for arch, falling back to an architecture-independent package.
func show(apt Apt, name, arch string) (Stanza, error) {
	st, err := apt.Show(name + ":" + arch)
	if errors.Is(err, ErrNoPackage) {
		st, err = apt.Show(name + ":all")
	}
	return st, err
}

func pinOf(st Stanza, arch string) (Pin, error) {
	p := Pin{Arch: arch, Name: st["Package"], DebArch: st["Architecture"], Version: st["Version"], SHA256: strings.ToLower(st["SHA256"])}
	if p.Name == "" || p.DebArch == "" || p.Version == "" || len(p.SHA256) != 64 {
		return Pin{}, fmt.Errorf("apt record for %q lacks Package/Architecture/Version/SHA256", st["Package"])
	}
	if p.DebArch != arch && p.DebArch != "all" {
		return Pin{}, fmt.Errorf("apt gave %s for %s, want %s", p.DebArch, p.Name, arch)
	}
	return p, nil
}

// memoApt remembers Show answers: the closure walk asks about the same packages many times.
type memoApt struct {
	Apt
	m map[string]memoEntry
}

type memoEntry struct {
	st  Stanza
	err error
}

// batchShower is an Apt that can look up many packages in one call (SystemApt can).
type batchShower interface {
	ShowMany(specs []string) (map[string]Stanza, error)
}

// prefetch fills the memo for specs with one ShowMany call; without batching it does nothing
// and Show asks one by one.
func (a *memoApt) prefetch(specs []string) {
	b, ok := a.Apt.(batchShower)
	if !ok {
		return
	}
	var todo []string
	seen := map[string]bool{}
	for _, s := range specs {
		if _, ok := a.m[s]; !ok && !seen[s] {
			seen[s] = true
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return
	}
	found, err := b.ShowMany(todo)
	if err != nil {
		return // Show will ask one by one and report the error
	}
	for _, s := range todo {
		if st, ok := found[s]; ok {
			a.m[s] = memoEntry{st: st}
		} else {
			a.m[s] = memoEntry{err: fmt.Errorf("%w: %s", ErrNoPackage, s)}
		}
	}
}

func (a *memoApt) Show(spec string) (Stanza, error) {
	if e, ok := a.m[spec]; ok {
		return e.st, e.err
	}
	st, err := a.Apt.Show(spec)
	a.m[spec] = memoEntry{st, err}
	return st, err
}
