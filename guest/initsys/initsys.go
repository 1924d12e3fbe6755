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
)

// ErrUnsupported is returned by the fallbacks on systems other than Linux: the agent only runs in
// the Linux guest.
var ErrUnsupported = errors.New("initsys: only supported in the Linux guest")

// ModulesFile lists the kernel modules to load, one absolute .ko path per line, in load order.
const ModulesFile = "/etc/luksmount/modules"

// ParseModules reads a modules list: one absolute path per line; blank lines and # comments are
// skipped. A relative path is an error (the image builder writes absolute ones).
func ParseModules(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "/") {
			return nil, fmt.Errorf("modules list line %d: %q is not an absolute path", n, line)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read modules list: %w", err)
	}
	return out, nil
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
}

// PowerOffMode picks how to stop the VM: POWER_OFF needs ACPI (x86) or PSCI (arm64); without them
// the kernel only halts and QEMU would hang, so restart instead (QEMU runs with -no-reboot and exits).
func PowerOffMode(goarch string, haveACPI bool) string {
	if haveACPI || goarch == "arm64" {
		return "poweroff"
	}
	return "restart"
}
