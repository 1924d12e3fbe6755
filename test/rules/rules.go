// Package rules holds the repository's house rules as checks over `go list` output and the source
// tree: which way imports point, what the agent binary may link, how long a product main may be,
// one package doc per package and build configuration, QEMU's -kernel only in host/qemu, _other
// (not _others) fallback file names, a tidy go.mod. rules_test.go runs them over this repository
// (in `make test-quick`) and over a fixture module that breaks each rule once, so every check is
// shown to fail.
package rules

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Package is the part of `go list -json` output the rules read.
type Package struct {
	ImportPath   string
	Dir          string
	Name         string
	Standard     bool
	GoFiles      []string
	CgoFiles     []string
	TestGoFiles  []string
	XTestGoFiles []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Module       *struct{ Path string }
	Error        *struct{ Err string }
}

// Config is one build configuration: GOOS, GOARCH and build tags.
type Config struct {
	GOOS, GOARCH string
	Tags         string
}

func (c Config) String() string {
	s := c.GOOS + "/" + c.GOARCH
	if c.Tags != "" {
		s += " -tags " + c.Tags
	}
	return s
}

func (c Config) env() []string {
	return append(os.Environ(), "GOOS="+c.GOOS, "GOARCH="+c.GOARCH, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
}

// List runs `go list -e -json [flags] patterns` in dir under cfg.
func List(dir string, cfg Config, flags []string, patterns ...string) ([]Package, error) {
	args := append([]string{"list", "-e", "-json"}, flags...)
	if cfg.Tags != "" {
		args = append(args, "-tags", cfg.Tags)
	}
	args = append(args, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = cfg.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s (%s): %v: %s", strings.Join(args, " "), cfg, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// rel names a package by its path inside the module ("guest/agent").
func rel(module, importPath string) string {
	if importPath == module {
		return "."
	}
	return strings.TrimPrefix(importPath, module+"/")
}

func under(relPath, top string) bool { return relPath == top || strings.HasPrefix(relPath, top+"/") }

// importingFile names the file of p (one of files) that imports path, for messages.
func importingFile(p Package, files []string, path string) string {
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.ImportsOnly)
		if err != nil {
			continue
		}
		for _, is := range af.Imports {
			if v, _ := strconv.Unquote(is.Path.Value); v == path {
				return f
			}
		}
	}
	return "?"
}

// ImportDirection reports module packages that import across the one-way lines: guest/ and pkg/
// never import host/; host/ and pkg/ never import guest/. Test files count too.
func ImportDirection(module, root string, pkgs []Package) []string {
	forbidden := []struct {
		from    []string
		to, why string
	}{
		{[]string{"guest", "pkg"}, "host", "guest/ and pkg/ must not import host/"},
		{[]string{"host", "pkg"}, "guest", "host/ and pkg/ must not import guest/"},
	}
	var out []string
	for _, p := range pkgs {
		if !own(module, p) {
			continue
		}
		from := rel(module, p.ImportPath)
		groups := []struct {
			files   []string
			imports []string
		}{
			{append(append([]string{}, p.GoFiles...), p.CgoFiles...), p.Imports},
			{p.TestGoFiles, p.TestImports},
			{p.XTestGoFiles, p.XTestImports},
		}
		for _, rule := range forbidden {
			if !under(from, rule.from[0]) && !under(from, rule.from[1]) {
				continue
			}
			for _, g := range groups {
				for _, imp := range g.imports {
					if !strings.HasPrefix(imp, module+"/") || !under(rel(module, imp), rule.to) {
						continue
					}
					file := filepath.ToSlash(filepath.Join(relDir(root, p.Dir), importingFile(p, g.files, imp)))
					out = append(out, fmt.Sprintf("%s imports %s: %s", file, rel(module, imp), rule.why))
				}
			}
		}
	}
	return dedupe(out)
}

func relDir(root, dir string) string {
	r, err := filepath.Rel(root, dir)
	if err != nil {
		return dir
	}
	return r
}

// BannedDeps reports each package in banned (an exact import path, or a prefix ending in "/...")
// that the binary main links, with the import chain that pulls it in. pkgs is `go list -deps
// -json main`.
func BannedDeps(module, root, main string, pkgs []Package, banned []string) []string {
	byPath := map[string]Package{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	if _, ok := byPath[main]; !ok {
		return []string{fmt.Sprintf("%s is not among the listed packages: is the binary's path right?", rel(module, main))}
	}
	// Breadth-first from main, so each chain is a shortest one.
	parent := map[string]string{main: ""}
	queue := []string{main}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range byPath[cur].Imports {
			if _, seen := parent[imp]; !seen {
				parent[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	var out []string
	for _, path := range sortedKeys(parent) {
		if !isBanned(path, banned) {
			continue
		}
		chain := []string{}
		for c := path; c != ""; c = parent[c] {
			chain = append([]string{rel(module, c)}, chain...)
		}
		importer := byPath[parent[path]]
		file := filepath.ToSlash(filepath.Join(relDir(root, importer.Dir), importingFile(importer, append(append([]string{}, importer.GoFiles...), importer.CgoFiles...), path)))
		out = append(out, fmt.Sprintf("%s links %s via %s (imported by %s)", rel(module, main), path, strings.Join(chain, " -> "), file))
	}
	return out
}

func isBanned(path string, banned []string) bool {
	for _, b := range banned {
		if prefix, ok := strings.CutSuffix(b, "/..."); ok {
			if path == prefix || strings.HasPrefix(path, prefix+"/") {
				return true
			}
		} else if path == b {
			return true
		}
	}
	return false
}

// MainSizes reports product mains (every package directly under cmd/) whose non-test Go files,
// all build configurations together, have max lines or more.
func MainSizes(root string, max int) ([]string, error) {
	dirs, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, "cmd", d.Name())
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		total := 0
		var counted []string
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			n, err := countLines(f)
			if err != nil {
				return nil, err
			}
			total += n
			counted = append(counted, fmt.Sprintf("%s %d", filepath.Base(f), n))
		}
		if total >= max {
			out = append(out, fmt.Sprintf("cmd/%s is %d lines (%s); a product main stays under %d: move the work into a package",
				d.Name(), total, strings.Join(counted, ", "), max))
		}
	}
	return out, nil
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return bytes.Count(b, []byte("\n")), nil
}

// PackageDocs reports module packages that, in this build configuration, have no package doc
// comment or more than one. Non-test files count; a package with only test files (the VM tests)
// counts its in-package test files.
func PackageDocs(module, root string, cfg Config, pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		if !own(module, p) {
			continue
		}
		files := append(append([]string{}, p.GoFiles...), p.CgoFiles...)
		if len(files) == 0 {
			files = p.TestGoFiles
		}
		if len(files) == 0 {
			continue
		}
		var withDoc []string
		fset := token.NewFileSet()
		for _, f := range files {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: %v", filepath.Join(relDir(root, p.Dir), f), err))
				continue
			}
			if hasDoc(af) {
				withDoc = append(withDoc, f)
			}
		}
		dir := filepath.ToSlash(relDir(root, p.Dir))
		switch len(withDoc) {
		case 1:
		case 0:
			out = append(out, fmt.Sprintf("%s has no package doc comment for %s (files: %s): add one, e.g. in doc.go",
				dir, cfg, strings.Join(files, ", ")))
		default:
			out = append(out, fmt.Sprintf("%s has %d package doc comments for %s (%s): keep exactly one",
				dir, len(withDoc), cfg, strings.Join(withDoc, ", ")))
		}
	}
	return out
}

func hasDoc(f *ast.File) bool { return f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" }

// kernelFlag matches QEMU's -kernel as an argument or inside a command-line string.
var kernelFlag = regexp.MustCompile(`(^|\s)-kernel(\s|=|$)`)

// KernelFlag reports Go string literals and shell lines outside allowedDir (host/qemu) that pass
// QEMU's -kernel, i.e. command lines written by hand instead of rendered by host/qemu.Config.
// Directories named testdata, build and bin and dot-directories are skipped; skip lists further
// files and directories (relative, slash-separated).
func KernelFlag(root, allowedDir string, skip map[string]bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r := filepath.ToSlash(relDir(root, path))
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "build" || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			if under(r, allowedDir) || skip[r] {
				return filepath.SkipDir
			}
			return nil
		}
		if skip[r] {
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".go"):
			fset := token.NewFileSet()
			af, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return fmt.Errorf("%s: %v", r, err)
			}
			ast.Inspect(af, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && kernelFlag.MatchString(s) {
					out = append(out, fmt.Sprintf("%s:%d: passes QEMU's -kernel by hand; render the command line with host/qemu.Config",
						r, fset.Position(lit.Pos()).Line))
				}
				return true
			})
		case strings.HasSuffix(path, ".sh"):
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for n := 1; sc.Scan(); n++ {
				line := strings.TrimSpace(sc.Text())
				if !strings.HasPrefix(line, "#") && kernelFlag.MatchString(line) {
					out = append(out, fmt.Sprintf("%s:%d: passes QEMU's -kernel by hand; boot through host/qemu.Config", r, n))
				}
			}
		}
		return nil
	})
	return out, err
}

// Tidy returns the diff `go mod tidy -diff` would apply to dir's go.mod and go.sum (empty: tidy;
// it changes no file). With no network and modules missing from the cache it cannot decide: then
// err says why, and the caller falls back to IndirectDirect.
func Tidy(dir string) (diff string, err error) {
	cmd := exec.Command("go", "mod", "tidy", "-diff")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if runErr == nil {
		return "", nil
	}
	if stdout.Len() > 0 && strings.TrimSpace(stderr.String()) == "" {
		return stdout.String(), nil
	}
	return "", fmt.Errorf("go mod tidy -diff: %v: %s", runErr, strings.TrimSpace(stderr.String()))
}

// GoMod is the part of `go mod edit -json` the rules read.
type GoMod struct {
	Module  struct{ Path string }
	Require []struct {
		Path     string
		Indirect bool
	}
}

// ReadGoMod parses dir/go.mod with `go mod edit -json` (no network).
func ReadGoMod(dir string) (GoMod, error) {
	var m GoMod
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return m, fmt.Errorf("go mod edit -json: %v", err)
	}
	return m, json.Unmarshal(out, &m)
}

// IndirectDirect is the offline half of tidiness: every module whose packages the main module
// imports (imported, from `go list -deps -test` over the configurations) must be required without
// "// indirect", and go.mod must not mark a module direct that nothing imports.
func IndirectDirect(m GoMod, imported map[string]bool) []string {
	var out []string
	for _, r := range m.Require {
		switch {
		case imported[r.Path] && r.Indirect:
			out = append(out, fmt.Sprintf("go.mod: %s is imported by this module but marked // indirect: run `go mod tidy`", r.Path))
		case !imported[r.Path] && !r.Indirect:
			out = append(out, fmt.Sprintf("go.mod: %s is required as direct but no package of this module imports it: run `go mod tidy`", r.Path))
		}
	}
	return out
}

// ImportedModules returns the modules (other than module) that provide a package imported
// directly by one of module's packages, tests included.
func ImportedModules(module string, pkgs []Package) map[string]bool {
	provider := map[string]string{}
	for _, p := range pkgs {
		if p.Module != nil {
			provider[p.ImportPath] = p.Module.Path
		}
	}
	out := map[string]bool{}
	for _, p := range pkgs {
		if p.Module == nil || p.Module.Path != module {
			continue
		}
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range list {
				if m := provider[imp]; m != "" && m != module {
					out[m] = true
				}
			}
		}
	}
	return out
}

// own reports whether p is one of module's packages as written (not a test variant or test main).
func own(module string, p Package) bool {
	return p.Module != nil && p.Module.Path == module && !strings.Contains(p.ImportPath, " ") && !strings.HasSuffix(p.ImportPath, ".test")
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FileSuffixes reports Go files named *_others.go: the fallback beside _linux/_darwin files is
// spelled _other, as in the rest of the tree.
func FileSuffixes(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), "_others.go") {
			out = append(out, fmt.Sprintf("%s: name platform fallbacks *_other.go", filepath.ToSlash(relDir(root, path))))
		}
		return nil
	})
	return out, err
}
