// Package debpkg pins, downloads, verifies and unpacks the Debian packages the guest images are
// built from. Pins live in a lock file; resolving new pins asks apt (apt-cache show) and
// downloading uses `apt-get download`, so the host's apt sources and arm64 foreign architecture
// decide where packages come from.
package debpkg

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Pin is one package at one exact version for one image architecture.
type Pin struct {
	Arch     string   // image architecture: amd64, arm64
	Name     string   // Debian package name
	DebArch  string   // package architecture: Arch or "all"
	Version  string   // Debian version, with epoch
	SHA256   string   // of the .deb, lowercase hex
	Variants []string // image variants that use it, sorted
}

// Spec is the apt name of the pinned package: name:arch=version.
func (p Pin) Spec() string { return p.Name + ":" + p.DebArch + "=" + p.Version }

// Uses reports whether variant v needs this package.
func (p Pin) Uses(v string) bool {
	for _, x := range p.Variants {
		if x == v {
			return true
		}
	}
	return false
}

// LockHeader starts every lock file.
const LockHeader = `# Debian 12 packages the luksmount guest images are built from, pinned by image architecture,
# package name and architecture, version and sha256 of the .deb. Generated: do not edit by hand.
# Refresh (re-resolves the current versions from apt and rewrites this file): make lock
# Columns: image-arch package:deb-arch version sha256 variants
`

// Lock is the parsed lock file.
type Lock struct {
	Pins []Pin
}

// ParseLock reads a lock file written by Format.
func ParseLock(r io.Reader) (*Lock, error) {
	l := &Lock{}
	seen := map[string]bool{}
	s := bufio.NewScanner(r)
	for line := 1; s.Scan(); line++ {
		text := strings.TrimSpace(s.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 5 {
			return nil, fmt.Errorf("lock line %d: want 5 fields (arch package:arch version sha256 variants), got %d", line, len(f))
		}
		name, debArch, ok := strings.Cut(f[1], ":")
		if !ok || name == "" || debArch == "" {
			return nil, fmt.Errorf("lock line %d: package %q is not name:arch", line, f[1])
		}
		if b, err := hex.DecodeString(f[3]); err != nil || len(b) != 32 || strings.ToLower(f[3]) != f[3] {
			return nil, fmt.Errorf("lock line %d: %q is not a lowercase hex sha256", line, f[3])
		}
		p := Pin{Arch: f[0], Name: name, DebArch: debArch, Version: f[2], SHA256: f[3], Variants: strings.Split(f[4], ",")}
		key := p.Arch + " " + p.Name
		if seen[key] {
			return nil, fmt.Errorf("lock line %d: %s is pinned twice for %s", line, p.Name, p.Arch)
		}
		seen[key] = true
		l.Pins = append(l.Pins, p)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cannot read lock file: %w", err)
	}
	return l, nil
}

// Format writes the lock with its header, pins sorted by architecture then name.
func (l *Lock) Format(w io.Writer) error {
	pins := append([]Pin(nil), l.Pins...)
	sort.Slice(pins, func(i, j int) bool {
		if pins[i].Arch != pins[j].Arch {
			return pins[i].Arch < pins[j].Arch
		}
		return pins[i].Name < pins[j].Name
	})
	bw := bufio.NewWriter(w)
	bw.WriteString(LockHeader)
	for _, p := range pins {
		v := append([]string(nil), p.Variants...)
		sort.Strings(v)
		fmt.Fprintf(bw, "%s %s:%s %s %s %s\n", p.Arch, p.Name, p.DebArch, p.Version, p.SHA256, strings.Join(v, ","))
	}
	return bw.Flush()
}

// For returns the pins of one architecture that variant uses.
func (l *Lock) For(arch, variant string) []Pin {
	var out []Pin
	for _, p := range l.Pins {
		if p.Arch == arch && p.Uses(variant) {
			out = append(out, p)
		}
	}
	return out
}
