package dist

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/luksmount/luksmount/host/images"
)

// DefaultBaseURL is where `make dist` says the archives will be downloaded from unless
// RELEASE_BASE_URL says otherwise: the project's GitHub release for the version's tag.
const DefaultBaseURL = "https://github.com/luksmount/luksmount/releases/download/v{{version}}"

// FormulaData fills the Homebrew formula template.
type FormulaData struct {
	Version  string
	ArmURL   string
	ArmSHA   string
	IntelURL string
	IntelSHA string
}

// NewFormulaData takes the archive sums (by file name) and the base URL ("{{version}}" in it
// is replaced by the version).
func NewFormulaData(version, baseURL string, sums map[string]string) (FormulaData, error) {
	base := strings.TrimRight(strings.ReplaceAll(baseURL, "{{version}}", version), "/")
	d := FormulaData{Version: version}
	for _, p := range []struct {
		arch     string
		url, sha *string
	}{{"arm64", &d.ArmURL, &d.ArmSHA}, {"amd64", &d.IntelURL, &d.IntelSHA}} {
		name := ArchiveName(version, "darwin", p.arch)
		sum, ok := sums[name]
		if !ok {
			return d, fmt.Errorf("SHA256SUMS has no %s", name)
		}
		*p.url, *p.sha = base+"/"+name, sum
	}
	return d, nil
}

// RenderFormula executes the template (text/template; every field must be used as given).
func RenderFormula(tmpl []byte, d FormulaData) ([]byte, error) {
	t, err := template.New("formula").Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, fmt.Errorf("formula template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("formula template: %w", err)
	}
	return b.Bytes(), nil
}

var (
	formulaURL     = regexp.MustCompile(`(?m)^\s*url "([^"]+)"\s*\n\s*sha256 "([^"]*)"`)
	formulaVersion = regexp.MustCompile(`(?m)^\s*version "([^"]+)"`)
)

// VerifyFormula checks a rendered formula against the archives in dir: its version, one url +
// sha256 pair per macOS archive, each sha256 equal to SHA256SUMS and to the file's own.
func VerifyFormula(formula []byte, dir, version string) error {
	sumsData, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return err
	}
	sums, err := images.ParseSums(sumsData)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "SHA256SUMS"), err)
	}
	if m := formulaVersion.FindSubmatch(formula); m == nil || string(m[1]) != version {
		return fmt.Errorf("formula does not say version %q", version)
	}
	pairs := formulaURL.FindAllSubmatch(formula, -1)
	want := map[string]bool{ArchiveName(version, "darwin", "arm64"): true, ArchiveName(version, "darwin", "amd64"): true}
	if len(pairs) != len(want) {
		return fmt.Errorf("formula has %d url/sha256 pairs, want %d (on_arm and on_intel)", len(pairs), len(want))
	}
	for _, p := range pairs {
		name, sha := path.Base(string(p[1])), string(p[2])
		if !want[name] {
			return fmt.Errorf("formula url %s is not one of this release's macOS archives", p[1])
		}
		delete(want, name)
		if sums[name] != sha {
			return fmt.Errorf("formula sha256 for %s is %s, SHA256SUMS says %s", name, sha, sums[name])
		}
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != sha {
			return fmt.Errorf("formula sha256 for %s is %s, the archive's is %s", name, sha, got)
		}
	}
	return nil
}
