package rules

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// configs are the build configurations the package-doc and import rules hold in: both host
// platforms, with and without the VM-test tag.
var configs = []Config{
	{GOOS: "linux", GOARCH: "amd64"},
	{GOOS: "darwin", GOARCH: "arm64"},
	{GOOS: "linux", GOARCH: "amd64", Tags: "vmtest"},
	{GOOS: "darwin", GOARCH: "arm64", Tags: "vmtest"},
}

// agentBanned is what the guest agent binary must never link: the host's CLI framework, the
// host's network stack, a logging framework, and the testing package (tests compiled in).
var agentBanned = []string{
	"github.com/urfave/cli/...",
	"github.com/containers/gvisor-tap-vsock/...",
	"gvisor.dev/gvisor/...",
	"github.com/sirupsen/logrus/...",
	"testing/...",
}

const maxMainLines = 50

// kernelFlagSkip leaves out the rules' own patterns and messages.
var kernelFlagSkip = map[string]bool{"test/rules": true}

// checked runs every rule over the module at root, as the repository test and the fixture test
// both do, and returns the violations by rule.
func checked(t *testing.T, root, agent string, kernelSkip map[string]bool) map[string][]string {
	t.Helper()
	mod, err := ReadGoMod(root)
	if err != nil {
		t.Fatal(err)
	}
	module := mod.Module.Path
	got := map[string][]string{}
	imported := map[string]bool{}
	for _, cfg := range configs {
		pkgs, err := List(root, cfg, []string{"-deps", "-test"}, "./...")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range pkgs {
			if own(module, p) {
				n++
				if p.Error != nil {
					t.Fatalf("go list %s: %s: %s", cfg, p.ImportPath, p.Error.Err)
				}
			}
		}
		if n < 5 {
			t.Fatalf("go list %s found only %d packages of %s", cfg, n, module)
		}
		got["imports"] = append(got["imports"], ImportDirection(module, root, pkgs)...)
		got["docs"] = append(got["docs"], PackageDocs(module, root, cfg, pkgs)...)
		for m := range ImportedModules(module, pkgs) {
			imported[m] = true
		}
	}
	got["imports"] = dedupe(got["imports"])
	for _, arch := range []string{"amd64", "arm64"} {
		pkgs, err := List(root, Config{GOOS: "linux", GOARCH: arch}, []string{"-deps"}, agent)
		if err != nil {
			t.Fatal(err)
		}
		got["agent"] = append(got["agent"], BannedDeps(module, root, module+"/"+strings.TrimPrefix(agent, "./"), pkgs, agentBanned)...)
	}
	got["agent"] = dedupe(got["agent"])
	if got["mains"], err = MainSizes(root, maxMainLines); err != nil {
		t.Fatal(err)
	}
	if got["kernel"], err = KernelFlag(root, "host/qemu", kernelSkip); err != nil {
		t.Fatal(err)
	}
	if got["suffixes"], err = FileSuffixes(root); err != nil {
		t.Fatal(err)
	}
	got["tidy"] = IndirectDirect(mod, imported)
	return got
}

// TestRepository holds this repository to its rules (see the package doc). Each failure names
// the file or package that broke a rule.
func TestRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	got := checked(t, root, "./cmd/luksmount-agent", kernelFlagSkip)
	for _, rule := range []string{"imports", "agent", "mains", "docs", "kernel", "suffixes", "tidy"} {
		for _, v := range got[rule] {
			t.Errorf("%s: %s", rule, v)
		}
	}
	diff, err := Tidy(root)
	switch {
	case err != nil:
		// Offline with modules missing from the cache: the go.mod markers were checked above.
		t.Logf("go mod tidy -diff could not run (%v); checked // indirect markers only", err)
	case diff != "":
		t.Errorf("tidy: go.mod/go.sum are not tidy: run `go mod tidy`:\n%s", diff)
	}
}

// TestRulesCatchBreaks runs the same checks over testdata/badmod, a module that breaks every rule
// once, and wants exactly those breaks, each naming its file or package.
func TestRulesCatchBreaks(t *testing.T) {
	root, err := filepath.Abs("testdata/badmod")
	if err != nil {
		t.Fatal(err)
	}
	got := checked(t, root, "./cmd/luksmount-agent", nil)
	want := map[string][]string{
		"imports": {
			"guest/a/a.go imports host/h: guest/ and pkg/ must not import host/",
			"host/h/h_test.go imports guest/t: host/ and pkg/ must not import guest/",
			"pkg/p/p.go imports guest/t: host/ and pkg/ must not import guest/",
		},
		"agent": {
			"cmd/luksmount-agent links testing via cmd/luksmount-agent -> guest/t -> testing (imported by guest/t/t.go)",
		},
		"mains": {
			"cmd/luksmount-agent is 57 lines (main.go 57); a product main stays under 50: move the work into a package",
		},
		"kernel": {
			"bench/vm/boot.sh:3: passes QEMU's -kernel by hand; boot through host/qemu.Config",
			"bench/vm/vm.go:4: passes QEMU's -kernel by hand; render the command line with host/qemu.Config",
			"bench/vm/vm.go:6: passes QEMU's -kernel by hand; render the command line with host/qemu.Config",
		},
		"suffixes": {"pkg/p/p_others.go: name platform fallbacks *_other.go"},
		"tidy": {
			"go.mod: example.com/unused is required as direct but no package of this module imports it: run `go mod tidy`",
		},
	}
	// Docs: pkg/nodoc and pkg/twodocs in every configuration, pkg/linuxonly on darwin only.
	for _, cfg := range configs {
		want["docs"] = append(want["docs"],
			"pkg/nodoc has no package doc comment for "+cfg.String()+" (files: x.go): add one, e.g. in doc.go",
			"pkg/twodocs has 2 package doc comments for "+cfg.String()+" (a.go, b.go): keep exactly one")
		if cfg.GOOS == "darwin" {
			want["docs"] = append(want["docs"],
				"pkg/linuxonly has no package doc comment for "+cfg.String()+" (files: x.go): add one, e.g. in doc.go")
		}
	}
	for rule, w := range want {
		g := append([]string{}, got[rule]...)
		if rule == "docs" {
			g, w = dedupe(g), dedupe(append([]string{}, w...))
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("rule %s over the fixture:\ngot  %q\nwant %q", rule, g, w)
		}
	}
	diff, err := Tidy(root)
	if err != nil {
		t.Fatalf("go mod tidy -diff over the fixture (no network needed): %v", err)
	}
	if !strings.Contains(diff, "-require example.com/unused v0.0.0") {
		t.Errorf("Tidy over the untidy fixture = %q, want a diff removing example.com/unused", diff)
	}
}

func TestIndirectMarkedButImported(t *testing.T) {
	var m GoMod
	m.Require = append(m.Require,
		struct {
			Path     string
			Indirect bool
		}{"example.com/used", true},
		struct {
			Path     string
			Indirect bool
		}{"example.com/dep-of-dep", true})
	got := IndirectDirect(m, map[string]bool{"example.com/used": true})
	want := []string{"go.mod: example.com/used is imported by this module but marked // indirect: run `go mod tidy`"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IndirectDirect = %q, want %q", got, want)
	}
}

func TestBannedDepsNeedsTheBinary(t *testing.T) {
	got := BannedDeps("example.com/m", "/", "example.com/m/cmd/typo", []Package{{ImportPath: "example.com/m/cmd/agent"}}, agentBanned)
	if len(got) != 1 || !strings.Contains(got[0], "cmd/typo is not among the listed packages") {
		t.Errorf("BannedDeps for a missing binary = %q", got)
	}
}

func TestBannedPatterns(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"testing", true},
		{"testing/fstest", true},
		{"testingx", false},
		{"github.com/urfave/cli/v2", true},
		{"github.com/urfave/clix", false},
		{"github.com/containers/gvisor-tap-vsock/pkg/virtualnetwork", true},
		{"github.com/sirupsen/logrus", true},
		{"github.com/mdlayher/vsock", false},
	} {
		if got := isBanned(tc.path, agentBanned); got != tc.want {
			t.Errorf("isBanned(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
