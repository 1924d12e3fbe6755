package dist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func readTarGz(t *testing.T, b []byte) []*tar.Header {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q / time %v", zr.Header.Name, zr.Header.ModTime)
	}
	tr := tar.NewReader(zr)
	var hs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

func TestWriteTarGzIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bin")
	os.WriteFile(src, []byte("binary"), 0o700)
	os.Chtimes(src, time.Now(), time.Now())
	mtime := time.Unix(1764000000, 0)
	entries := []Entry{
		{Name: "share/luksmount/arm64/vmlinuz", Data: []byte("k")},
		{Name: "bin/luksmount", Mode: 0o755, Src: src},
		{Name: "README.md", Data: []byte("r")},
	}
	var a, b bytes.Buffer
	if err := WriteTarGz(&a, "top", entries, mtime); err != nil {
		t.Fatal(err)
	}
	// Same entries in another order, written later: same bytes.
	rev := []Entry{entries[2], entries[0], entries[1]}
	os.Chtimes(src, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if err := WriteTarGz(&b, "top", rev, mtime); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of the same entries differ")
	}
	var names []string
	for _, h := range readTarGz(t, a.Bytes()) {
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(mtime) {
			t.Errorf("%s: owner %d:%d %q:%q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		if h.Name == "top/bin/luksmount" && h.Mode != 0o755 {
			t.Errorf("binary mode %o", h.Mode)
		}
		if h.Name == "top/README.md" && h.Mode != 0o644 {
			t.Errorf("README mode %o", h.Mode)
		}
	}
	want := "top/ top/README.md top/bin/ top/bin/luksmount top/share/ top/share/luksmount/ top/share/luksmount/arm64/ top/share/luksmount/arm64/vmlinuz"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries\n %s\nwant\n %s", got, want)
	}
	var c bytes.Buffer
	WriteTarGz(&c, "top", entries, mtime.Add(time.Second))
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("the mtime does not reach the archive")
	}
}

func TestWriteTarGzRejects(t *testing.T) {
	for name, e := range map[string][]Entry{
		"escape":    {{Name: "../x", Data: []byte("x")}},
		"duplicate": {{Name: "a", Data: nil}, {Name: "a", Data: nil}},
		"file+dir":  {{Name: "a", Data: nil}, {Name: "a/b", Data: nil}},
		"missing":   {{Name: "a", Src: "/nonexistent/file"}},
	} {
		if err := WriteTarGz(io.Discard, "top", e, time.Unix(0, 0)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEscapePath(t *testing.T) {
	if got := escapePath("github.com/Microsoft/go-winio"); got != "github.com/!microsoft/go-winio" {
		t.Errorf("got %s", got)
	}
}

func TestCopyrightFollowsDocSymlink(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "base")
	lib := filepath.Join(root, "lib")
	os.MkdirAll(filepath.Join(base, "usr/share/doc/gcc-12-base"), 0o755)
	os.WriteFile(filepath.Join(base, "usr/share/doc/gcc-12-base/copyright"), []byte("GPL"), 0o644)
	os.MkdirAll(filepath.Join(lib, "usr/share/doc"), 0o755)
	os.Symlink("gcc-12-base", filepath.Join(lib, "usr/share/doc/libgcc-s1"))
	trees := map[string]string{"gcc-12-base": base, "libgcc-s1": lib}
	got, err := copyrightFile(trees, "libgcc-s1")
	if err != nil || got != filepath.Join(base, "usr/share/doc/gcc-12-base/copyright") {
		t.Fatalf("got %q, %v", got, err)
	}
	delete(trees, "gcc-12-base")
	if _, err := copyrightFile(trees, "libgcc-s1"); err == nil || !strings.Contains(err.Error(), "libgcc-s1") {
		t.Errorf("link to an unpinned package: %v", err)
	}
	os.Symlink("/etc", filepath.Join(lib, "usr/share/doc/evil"))
	trees["evil"] = lib
	if _, err := copyrightFile(trees, "evil"); err == nil {
		t.Error("an absolute doc symlink was followed")
	}
}

func TestFormulaRenderAndVerify(t *testing.T) {
	dir := t.TempDir()
	v := "1.2.0"
	for _, a := range []string{"arm64", "amd64"} {
		os.WriteFile(filepath.Join(dir, ArchiveName(v, "darwin", a)), []byte("archive "+a), 0o644)
	}
	os.WriteFile(filepath.Join(dir, ArchiveName(v, "linux", "amd64")), []byte("linux"), 0o644)
	sums, err := WriteSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile("../homebrew/luksmount.rb.in")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewFormulaData(v, DefaultBaseURL, sums)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := RenderFormula(tmpl, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`version "1.2.0"`, `depends_on "qemu"`, `depends_on :macos`, "on_arm do", "on_intel do",
		`url "https://github.com/luksmount/luksmount/releases/download/v1.2.0/luksmount-1.2.0-darwin-arm64.tar.gz"`,
		`sha256 "` + sums[ArchiveName(v, "darwin", "arm64")] + `"`, "Full Disk Access", "sudo", "test do", "doctor --json",
		`license "Apache-2.0"`,
	} {
		if !bytes.Contains(rb, []byte(want)) {
			t.Errorf("formula lacks %s", want)
		}
	}
	if bytes.Contains(rb, []byte("{{")) {
		t.Error("formula has unrendered template fields")
	}
	os.WriteFile(filepath.Join(dir, "luksmount.rb"), rb, 0o644)
	if err := VerifyFormula(rb, dir, v); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := VerifyFormula(rb, dir, "1.2.1"); err == nil {
		t.Error("wrong version accepted")
	}
	// A sha256 in the formula that is not the archive's.
	bad := bytes.Replace(rb, []byte(sums[ArchiveName(v, "darwin", "amd64")]), []byte(strings.Repeat("0", 64)), 1)
	if err := VerifyFormula(bad, dir, v); err == nil || !strings.Contains(err.Error(), "darwin-amd64") {
		t.Errorf("wrong sha256: %v", err)
	}
	// An archive changed after SHA256SUMS was written.
	os.WriteFile(filepath.Join(dir, ArchiveName(v, "darwin", "arm64")), []byte("tampered"), 0o644)
	if err := VerifyFormula(rb, dir, v); err == nil || !strings.Contains(err.Error(), "archive's is") {
		t.Errorf("changed archive: %v", err)
	}
	if _, err := NewFormulaData(v, DefaultBaseURL, map[string]string{}); err == nil {
		t.Error("missing archive accepted")
	}
}

func TestIndexListsEverything(t *testing.T) {
	idx := string(Index("1.0", []Component{
		{Kind: "go module", Name: "golang.org/x/sys", Version: "v0.1.0", In: "bin/luksmount", Files: []string{"go/golang.org/x/sys/LICENSE"}},
		{Kind: "debian package", Name: "libc6", Version: "2.36", In: "share/luksmount/arm64", Files: []string{"debian/arm64/libc6/copyright"}},
	}))
	for _, w := range []string{"golang.org/x/sys v0.1.0: go/golang.org/x/sys/LICENSE", "libc6 2.36: debian/arm64/libc6/copyright", "snapshot.debian.org"} {
		if !strings.Contains(idx, w) {
			t.Errorf("index lacks %q:\n%s", w, idx)
		}
	}
}

func TestGoModulesNeedsALicence(t *testing.T) {
	mc, goroot := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(goroot, "LICENSE"), []byte("bsd"), 0o644)
	os.WriteFile(filepath.Join(goroot, "PATENTS"), []byte("p"), 0o644)
	mod := filepath.Join(mc, "github.com/!microsoft/go-winio@v0.6.2")
	os.MkdirAll(mod, 0o755)
	os.WriteFile(filepath.Join(mod, "LICENSE"), []byte("mit"), 0o644)
	os.WriteFile(filepath.Join(mod, "main.go"), []byte("package x"), 0o644)
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Deps: []*debug.Module{{Path: "github.com/Microsoft/go-winio", Version: "v0.6.2"}}}
	comps, notices, err := GoModules(bi, "bin/luksmount", mc, goroot)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range notices {
		names = append(names, n.Name)
	}
	if got := strings.Join(names, " "); got != "go/std/LICENSE go/std/PATENTS go/github.com/Microsoft/go-winio/LICENSE" {
		t.Errorf("notices %s", got)
	}
	if len(comps) != 2 || comps[1].Version != "v0.6.2" {
		t.Errorf("components %+v", comps)
	}
	os.Remove(filepath.Join(mod, "LICENSE"))
	if _, _, err := GoModules(bi, "bin/luksmount", mc, goroot); err == nil || !strings.Contains(err.Error(), "no LICENSE") {
		t.Errorf("module without licence: %v", err)
	}
	bi.Deps[0].Path = "example.com/missing"
	if _, _, err := GoModules(bi, "bin/luksmount", mc, goroot); err == nil || !strings.Contains(err.Error(), "go mod download") {
		t.Errorf("module not in cache: %v", err)
	}
}

// TestProjectLicence: the repository's LICENSE is the Apache License 2.0 that the formula declares
// and every archive carries.
func TestProjectLicence(t *testing.T) {
	lic, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatalf("the project has no LICENSE file: %v", err)
	}
	if !bytes.Contains(lic[:min(len(lic), 200)], []byte("Apache License")) || !bytes.Contains(lic, []byte("Version 2.0, January 2004")) {
		t.Errorf("LICENSE is not the Apache License 2.0 the formula declares")
	}
	tmpl, err := os.ReadFile("../homebrew/luksmount.rb.in")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(tmpl, []byte(`license "`)); n != 1 || !bytes.Contains(tmpl, []byte(`license "Apache-2.0"`)) {
		t.Errorf("the formula must declare license \"Apache-2.0\" once (LICENSE)")
	}
	if _, err := Entries(ArchiveInput{Readme: "README.md"}); err == nil || !strings.Contains(err.Error(), "LICENSE") {
		t.Errorf("an archive without LICENSE: %v", err)
	}
}
