package dist

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"unicode"

	"github.com/luksmount/luksmount/initramfs/debpkg"
)

// Notice is one licence file that goes into an archive.
type Notice struct {
	Name string // archive path under the licences directory, e.g. go/golang.org/x/sys/LICENSE
	Src  string // host path
}

// Component is one thing inside an archive whose licence we ship, for the index.
type Component struct {
	Kind    string // "go module" or "debian package"
	Name    string
	Version string
	In      string // which file of the archive holds it
	Files   []string
}

// licenceFile matches the files Go modules keep their terms in (pkg.go.dev looks for the same names).
var licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|unlicense)([.-].*)?$`)

// GoModules lists the modules compiled into a Go binary (from its build info, as `go version -m`
// prints it) and the licence files of each from the module cache, plus Go's own (the standard
// library is linked in too). in names the binary inside the archive.
func GoModules(bi *debug.BuildInfo, in, modCache, goroot string) ([]Component, []Notice, error) {
	var comps []Component
	var notices []Notice
	std := Component{Kind: "go module", Name: "go (standard library and runtime)", Version: bi.GoVersion, In: in}
	for _, n := range []string{"LICENSE", "PATENTS"} {
		src := filepath.Join(goroot, n)
		if _, err := os.Stat(src); err != nil {
			return nil, nil, fmt.Errorf("Go's %s is missing from %s: %w", n, goroot, err)
		}
		notices = append(notices, Notice{Name: "go/std/" + n, Src: src})
		std.Files = append(std.Files, "go/std/"+n)
	}
	comps = append(comps, std)
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		if strings.HasPrefix(m.Path, ".") || strings.HasPrefix(m.Path, "/") {
			return nil, nil, fmt.Errorf("%s is replaced by the local directory %s: a release must use published modules", d.Path, m.Path)
		}
		dir := filepath.Join(modCache, escapePath(m.Path)+"@"+escapePath(m.Version))
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("module %s@%s is not in the module cache (%w): run `go mod download`", m.Path, m.Version, err)
		}
		c := Component{Kind: "go module", Name: m.Path, Version: m.Version, In: in}
		for _, e := range ents {
			if e.Type().IsRegular() && licenceFile.MatchString(e.Name()) {
				name := path.Join("go", m.Path, e.Name())
				notices = append(notices, Notice{Name: name, Src: filepath.Join(dir, e.Name())})
				c.Files = append(c.Files, name)
			}
		}
		if len(c.Files) == 0 {
			return nil, nil, fmt.Errorf("module %s@%s has no LICENSE/COPYING/NOTICE file in %s: its terms must be shipped by hand", m.Path, m.Version, dir)
		}
		comps = append(comps, c)
	}
	return comps, notices, nil
}

// escapePath is the module cache's case encoding: each upper-case letter becomes '!' and its
// lower-case form (golang.org/x/mod/module.EscapePath).
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DebianPackages lists the pinned packages the guest image of arch is built from and the
// copyright file of each, taken from the verified .deb in the image builder's cache.
func DebianPackages(lock *debpkg.Lock, cache debpkg.Cache, arch, variant, in string) ([]Component, []Notice, error) {
	pins := lock.For(arch, variant)
	if len(pins) == 0 {
		return nil, nil, fmt.Errorf("no packages pinned for the %s image on %s", variant, arch)
	}
	trees := map[string]string{}
	for _, p := range pins {
		dir, err := cache.Unpack(p) // verifies the sha256 against the lock
		if err != nil {
			return nil, nil, err
		}
		trees[p.Name] = dir
	}
	var comps []Component
	var notices []Notice
	for _, p := range pins {
		src, err := copyrightFile(trees, p.Name)
		if err != nil {
			return nil, nil, err
		}
		name := path.Join("debian", arch, p.Name, "copyright")
		notices = append(notices, Notice{Name: name, Src: src})
		comps = append(comps, Component{Kind: "debian package", Name: p.Name, Version: p.Version, In: in, Files: []string{name}})
	}
	return comps, notices, nil
}

// copyrightFile finds usr/share/doc/<pkg>/copyright in pkg's unpacked tree. A package may make
// its doc directory a symlink to a package it depends on from the same source (Debian policy
// 12.5, e.g. libgcc-s1 -> gcc-12-base); that link is followed into the other package's tree.
func copyrightFile(trees map[string]string, pkg string) (string, error) {
	name := pkg
	for i := 0; i < 4; i++ {
		root, ok := trees[name]
		if !ok {
			break
		}
		doc := filepath.Join(root, "usr", "share", "doc", name)
		fi, err := os.Lstat(doc)
		if err != nil {
			break
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			t, err := os.Readlink(doc)
			if err != nil || strings.Contains(t, "/") {
				break
			}
			name = t
			continue
		}
		p := filepath.Join(doc, "copyright")
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
		break
	}
	return "", fmt.Errorf("Debian package %s has no usr/share/doc/%s/copyright (following its doc symlink among the pinned packages): its licence cannot be shipped", pkg, pkg)
}

// Index renders the human-readable list of what is inside and where its licence is.
func Index(version string, comps []Component) []byte {
	sorted := append([]Component(nil), comps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.In != b.In {
			return a.In < b.In
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	var b strings.Builder
	fmt.Fprintf(&b, "# Third-party software in luksmount %s\n\n", version)
	b.WriteString("Every component below is shipped unmodified under its own licence; the licence files are in\n")
	b.WriteString("this directory at the path given. The Debian packages are Debian 12 binaries, pinned in\n")
	b.WriteString("initramfs/packages.lock by version and sha256; their exact sources are at\n")
	b.WriteString("https://snapshot.debian.org/ under the same name and version (`apt-get source NAME=VERSION`).\n")
	in := ""
	for _, c := range sorted {
		if c.In != in {
			in = c.In
			fmt.Fprintf(&b, "\n## %s\n\n", in)
		}
		fmt.Fprintf(&b, "- %s %s %s: %s\n", c.Kind, c.Name, c.Version, strings.Join(c.Files, ", "))
	}
	return []byte(b.String())
}
