package debpkg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestLockRoundTrip(t *testing.T) {
	l := &Lock{Pins: []Pin{
		{Arch: "arm64", Name: "libc6", DebArch: "arm64", Version: "2.36-9+deb12u14", SHA256: sum("a"), Variants: []string{"nfsclient", "agent"}},
		{Arch: "amd64", Name: "libaudit-common", DebArch: "all", Version: "1:3.0.9-1", SHA256: sum("b"), Variants: []string{"agent"}},
		{Arch: "amd64", Name: "cryptsetup-bin", DebArch: "amd64", Version: "2:2.6.1-4~deb12u2", SHA256: sum("c"), Variants: []string{"agent"}},
	}}
	var buf bytes.Buffer
	if err := l.Format(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	if !strings.HasPrefix(text, LockHeader) || !strings.Contains(text, "make lock") {
		t.Errorf("lock lacks its header:\n%s", text)
	}
	body := strings.TrimPrefix(text, LockHeader)
	want := "amd64 cryptsetup-bin:amd64 2:2.6.1-4~deb12u2 " + sum("c") + " agent\n" +
		"amd64 libaudit-common:all 1:3.0.9-1 " + sum("b") + " agent\n" +
		"arm64 libc6:arm64 2.36-9+deb12u14 " + sum("a") + " agent,nfsclient\n"
	if body != want {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}
	back, err := ParseLock(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	back.Format(&again)
	if again.String() != text {
		t.Errorf("format(parse(x)) != x:\n%s", again.String())
	}
	if got := back.For("arm64", "nfsclient"); len(got) != 1 || got[0].Name != "libc6" {
		t.Errorf("For(arm64, nfsclient) = %v", got)
	}
	if got := back.For("amd64", "agent"); len(got) != 2 {
		t.Errorf("For(amd64, agent) = %v", got)
	}
}

func TestParseLockErrors(t *testing.T) {
	good := "amd64 libc6:amd64 2.36 " + sum("a") + " agent"
	for _, in := range []string{
		"amd64 libc6:amd64 2.36 " + sum("a"),                             // missing variants
		"amd64 libc6 2.36 " + sum("a") + " agent",                        // no :arch
		"amd64 libc6:amd64 2.36 abc agent",                               // short sha
		"amd64 libc6:amd64 2.36 " + strings.ToUpper(sum("a")) + " agent", // uppercase
		good + "\n" + good,                                               // duplicate
	} {
		if _, err := ParseLock(strings.NewReader(in)); err == nil {
			t.Errorf("ParseLock(%q) succeeded; want an error", in)
		}
	}
}

func TestDeps(t *testing.T) {
	st := ParseStanza("Package: x\nPre-Depends: libc6 (>= 2.34)\nDepends: libfoo:any (= 1),\n debconf (>= 0.5) | debconf-2.0, libbar\nDescription: y\n more\n\nPackage: second\n")
	want := [][]string{{"libc6"}, {"libfoo"}, {"debconf", "debconf-2.0"}, {"libbar"}}
	if got := st.Deps(); !reflect.DeepEqual(got, want) {
		t.Errorf("Deps = %q; want %q", got, want)
	}
	if st["Package"] != "x" {
		t.Errorf("ParseStanza read past the first record: %q", st["Package"])
	}
}

// fakeApt serves stanzas from a map keyed "name:arch" and "downloads" .debs whose content is
// the spec string.
type fakeApt struct {
	pkgs      map[string]string // "name:arch" -> stanza text
	gone      map[string]bool   // specs whose download fails
	downloads int
}

func (f *fakeApt) Show(spec string) (Stanza, error) {
	key, _, _ := strings.Cut(spec, "=")
	s, ok := f.pkgs[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoPackage, spec)
	}
	return ParseStanza(s), nil
}

func (f *fakeApt) Download(dir string, specs ...string) error {
	f.downloads++
	for _, spec := range specs {
		if f.gone[spec] {
			return errors.New("E: Can't find a version")
		}
	}
	for _, spec := range specs {
		name, rest, _ := strings.Cut(spec, ":")
		arch, version, _ := strings.Cut(rest, "=")
		file := name + "_" + strings.ReplaceAll(version, ":", "%3a") + "_" + arch + ".deb"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(spec), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func stanza(name, arch, version, deps string) string {
	return fmt.Sprintf("Package: %s\nArchitecture: %s\nVersion: %s\nDepends: %s\nSHA256: %s\n", name, arch, version, deps, sum(name+":"+arch+"="+version))
}

// batchApt adds ShowMany to fakeApt and counts the calls of each kind.
type batchApt struct {
	*fakeApt
	shows, batches int
}

func (b *batchApt) Show(spec string) (Stanza, error) { b.shows++; return b.fakeApt.Show(spec) }

func (b *batchApt) ShowMany(specs []string) (map[string]Stanza, error) {
	b.batches++
	out := map[string]Stanza{}
	for _, s := range specs {
		if st, err := b.fakeApt.Show(s); err == nil {
			out[s] = st
		}
	}
	return out, nil
}

func TestResolve(t *testing.T) {
	testResolve(t, func(f *fakeApt) Apt { return f })
}

func TestResolveBatched(t *testing.T) {
	var b *batchApt
	testResolve(t, func(f *fakeApt) Apt { b = &batchApt{fakeApt: f}; return b })
	// Only the kernel lookups (by exact version) go one by one.
	if b.batches == 0 || b.shows > 4 {
		t.Errorf("%d batched and %d single lookups; want the closure walk batched", b.batches, b.shows)
	}
}

func testResolve(t *testing.T, wrap func(*fakeApt) Apt) {
	fake := &fakeApt{pkgs: map[string]string{
		"linux-image-cloud-amd64:amd64":          stanza("linux-image-cloud-amd64", "amd64", "6.1.192-2", "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)"),
		"linux-image-6.1.0-56-cloud-amd64:amd64": stanza("linux-image-6.1.0-56-cloud-amd64", "amd64", "6.1.192-2", "kmod, linux-base"),
		"cryptsetup-bin:amd64":                   stanza("cryptsetup-bin", "amd64", "2:2.6.1", "libc6 (>= 2.34), libcryptsetup12"),
		"libcryptsetup12:amd64":                  stanza("libcryptsetup12", "amd64", "2:2.6.1", "libc6, debconf | debconf-2.0, libaudit-common"),
		"libc6:amd64":                            stanza("libc6", "amd64", "2.36", "libgcc-s1"),
		"libgcc-s1:amd64":                        stanza("libgcc-s1", "amd64", "12.2", "libc6 (>= 2.35)"),
		"debconf:all":                            stanza("debconf", "all", "1.5", "perl-base"),
		"libaudit-common:all":                    stanza("libaudit-common", "all", "1:3.0.9-1", ""),
		"busybox-static:amd64":                   stanza("busybox-static", "amd64", "1.35", ""),
	}}
	apt := wrap(fake)
	pins, err := Resolve(apt, []Want{
		{Variant: "agent", Arch: "amd64", Kernel: "linux-image-cloud-amd64", Roots: []string{"cryptsetup-bin"}, Exclude: []string{"debconf"}},
		{Variant: "nfsclient", Arch: "amd64", Kernel: "linux-image-cloud-amd64", Roots: []string{"busybox-static", "libc6"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pins {
		got = append(got, p.Name+":"+p.DebArch+"="+p.Version+" "+strings.Join(p.Variants, ","))
	}
	want := []string{
		"busybox-static:amd64=1.35 nfsclient",
		"cryptsetup-bin:amd64=2:2.6.1 agent",
		"libaudit-common:all=1:3.0.9-1 agent",
		"libc6:amd64=2.36 agent,nfsclient",
		"libcryptsetup12:amd64=2:2.6.1 agent",
		"libgcc-s1:amd64=12.2 agent,nfsclient",
		"linux-image-6.1.0-56-cloud-amd64:amd64=6.1.192-2 agent,nfsclient",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pins:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if pins[0].SHA256 != sum("busybox-static:amd64=1.35") {
		t.Errorf("sha256 not taken from apt")
	}

	// A dependency nobody provides is an error naming it.
	fake.pkgs["libc6:amd64"] = stanza("libc6", "amd64", "2.36", "libmissing")
	if _, err := Resolve(apt, []Want{{Variant: "agent", Arch: "amd64", Roots: []string{"libc6"}}}); err == nil || !strings.Contains(err.Error(), "libmissing") {
		t.Errorf("err = %v; want one naming libmissing", err)
	}
}

func TestFetch(t *testing.T) {
	apt := &fakeApt{gone: map[string]bool{}}
	c := Cache{Dir: t.TempDir(), Apt: apt}
	p := Pin{Arch: "amd64", Name: "libc6", DebArch: "amd64", Version: "1:2.36", SHA256: sum("libc6:amd64=1:2.36")}
	path, err := c.Fetch(p)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "libc6_1%3a2.36_amd64.deb" {
		t.Errorf("cached as %s", path)
	}
	if _, err := c.Fetch(p); err != nil || apt.downloads != 1 {
		t.Errorf("second Fetch: err %v, %d downloads; want a cache hit", err, apt.downloads)
	}

	bad := p
	bad.Version, bad.SHA256 = "1:2.37", sum("something else")
	if _, err := c.Fetch(bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("wrong sha: err = %v; want ErrChecksum", err)
	}

	gone := p
	gone.Version = "1:2.30"
	apt.gone[gone.Spec()] = true
	_, err = c.Fetch(gone)
	if !errors.Is(err, ErrNotDownloadable) || !strings.Contains(err.Error(), "run `make lock` to pin the current version") || strings.Contains(err.Error(), "\n") {
		t.Errorf("gone: err = %q; want a one-line ErrNotDownloadable telling to run make lock", err)
	}

	// A batch: one apt-get call for all missing packages; a gone one is named.
	apt.downloads = 0
	var batch []Pin
	for _, n := range []string{"a", "b", "c"} {
		batch = append(batch, Pin{Arch: "amd64", Name: n, DebArch: "all", Version: "1", SHA256: sum(n + ":all=1")})
	}
	if err := c.FetchAll(batch); err != nil || apt.downloads != 1 {
		t.Errorf("FetchAll: err %v after %d apt calls; want 1 call", err, apt.downloads)
	}
	batch = append(batch, gone)
	if err := c.FetchAll(batch); !errors.Is(err, ErrNotDownloadable) || !strings.Contains(err.Error(), "libc6 1:2.30") {
		t.Errorf("FetchAll with a gone pin: err = %v; want ErrNotDownloadable naming libc6 1:2.30", err)
	}
}
