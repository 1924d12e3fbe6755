//go:build linux || darwin

package workload

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testOptions shrinks the slow scenarios; everything else runs at full size.
func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{
		Outside:     t.TempDir(),
		Manifest:    filepath.Join(t.TempDir(), "manifest.json"),
		Files:       500,
		Writers:     4,
		FSXDuration: 2 * time.Second,
		FSXMaxOps:   3000,
		Seed:        42,
	}
}

func runNamed(t *testing.T, dir, pattern string, opts Options) []Result {
	t.Helper()
	res, err := Run(context.Background(), dir, regexp.MustCompile(pattern), opts, nil)
	if err != nil {
		t.Fatalf("Run(%q): %v", pattern, err)
	}
	return res
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	names, err := listNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Every scenario passes on the local filesystem and cleans up after itself.
func TestScenariosPassLocally(t *testing.T) {
	for _, s := range Scenarios() {
		if s.Name == "write-fsync-record" || s.Name == "verify-manifest" {
			continue // TestManifestRoundTrip
		}
		if s.Name == "refused-ops" {
			continue // TestRefusedOpsFailsWhereTheyWork
		}
		t.Run(s.Name, func(t *testing.T) {
			dir := t.TempDir()
			res := runNamed(t, dir, "^"+s.Name+"$", testOptions(t))
			if len(res) != 1 || res[0].Name != s.Name {
				t.Fatalf("results %+v, want one for %s", res, s.Name)
			}
			r := res[0]
			t.Logf("%s: %dms %q", r.Name, r.DurationMS, r.Details)
			if !r.OK {
				t.Fatalf("%s failed: %s", r.Name, r.Error)
			}
			if r.Skipped && !(s.Name == "chown" && os.Geteuid() != 0) {
				t.Fatalf("%s skipped: %q", r.Name, r.Details)
			}
			if left := entries(t, dir); len(left) != 0 {
				t.Fatalf("%s left %q behind after success", r.Name, left)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t)
	res := runNamed(t, dir, "^(write-fsync-record|verify-manifest)$", opts)
	if len(res) != 2 || res[0].Name != "write-fsync-record" || res[1].Name != "verify-manifest" {
		t.Fatalf("results %+v", res)
	}
	for _, r := range res {
		if !r.OK || r.Skipped {
			t.Fatalf("%s: ok %v skipped %v error %q details %q", r.Name, r.OK, r.Skipped, r.Error, r.Details)
		}
	}
	// The recorded files stay for a later verify (after a crash and reboot), in a fresh run.
	if left := entries(t, dir); len(left) != 1 || !strings.HasPrefix(left[0], "write-fsync-record.") {
		t.Fatalf("directory holds %q, want just the write-fsync-record directory", left)
	}
	res = runNamed(t, dir, "^verify-manifest$", opts)
	if !res[0].OK {
		t.Fatalf("second verify: %s", res[0].Error)
	}
}

func TestManifestScenariosSkipWithoutManifest(t *testing.T) {
	opts := testOptions(t)
	opts.Manifest = ""
	for _, r := range runNamed(t, t.TempDir(), "manifest|record", opts) {
		if !r.Skipped || !strings.Contains(strings.Join(r.Details, "\n"), "no -manifest") {
			t.Errorf("%s without -manifest: %+v, want skipped with the reason", r.Name, r)
		}
	}
}

func TestSymlinksSaysWhenOutsideCheckIsSkipped(t *testing.T) {
	opts := testOptions(t)
	opts.Outside = ""
	r := runNamed(t, t.TempDir(), "^symlinks$", opts)[0]
	if !r.OK || !strings.Contains(strings.Join(r.Details, "\n"), "skipped sub-check outside-sentinel") {
		t.Fatalf("symlinks without -outside: %+v", r)
	}
}

func TestSeedReproducesFSX(t *testing.T) {
	opts := testOptions(t)
	opts.FSXMaxOps = 500
	opts.FSXDuration = time.Minute
	a := runNamed(t, t.TempDir(), "^fsx$", opts)[0]
	b := runNamed(t, t.TempDir(), "^fsx$", opts)[0]
	counts := func(r Result) string {
		for _, d := range r.Details {
			if strings.HasPrefix(d, "fsx: ") {
				return d[strings.Index(d, "counts"):]
			}
		}
		t.Fatalf("no fsx counts in %q", r.Details)
		return ""
	}
	if !a.OK || !b.OK || counts(a) != counts(b) {
		t.Fatalf("same seed, different runs: %q vs %q", a.Details, b.Details)
	}
	opts.Seed = 43
	if c := runNamed(t, t.TempDir(), "^fsx$", opts)[0]; counts(c) == counts(a) {
		t.Fatalf("different seeds, same op mix %q", counts(c))
	}
}

func TestRunRejectsBadTargets(t *testing.T) {
	if _, err := Run(context.Background(), filepath.Join(t.TempDir(), "nope"), nil, Options{}, nil); err == nil {
		t.Error("Run on a missing directory succeeded")
	}
	if _, err := Run(context.Background(), t.TempDir(), regexp.MustCompile("^nothing$"), Options{}, nil); err == nil {
		t.Error("Run with a filter matching nothing succeeded")
	}
}

func TestMismatchDescribesTheFirstDifference(t *testing.T) {
	if d := mismatch([]byte("abc"), []byte("abc"), 0); d != "" {
		t.Fatalf("equal: %q", d)
	}
	d := mismatch([]byte("hello world"), []byte("hello_world"), 100)
	if !strings.Contains(d, "offset 105") || !strings.Contains(d, "want [20 77") || !strings.Contains(d, "got [5f 77") {
		t.Fatalf("mismatch: %q", d)
	}
	if d := mismatch([]byte("abcd"), []byte("ab"), 0); !strings.Contains(d, "length 2, want 4") {
		t.Fatalf("short: %q", d)
	}
}

func TestCompareNames(t *testing.T) {
	want := []string{"a", "b", "c"}
	cases := []struct {
		got     []string
		silly   bool
		contain string
	}{
		{[]string{"a", "b"}, false, `missing 1 ("c")`},
		{[]string{"a", "b", "c", "d"}, false, `extra 1 ("d")`},
		{[]string{"a", "b", "c", "c"}, false, `duplicated 1 ("c")`},
		{[]string{"a", "b", "c", ".nfs0001"}, false, `extra 1 (".nfs0001")`},
		{[]string{"a", "b", "c", ".nfs0001"}, true, ""},
		{[]string{"c", "b", "a"}, false, ""},
	}
	for _, c := range cases {
		d := compareNames(c.got, want, c.silly)
		if (c.contain == "") != (d == "") || !strings.Contains(d, c.contain) {
			t.Errorf("compareNames(%q, silly=%v) = %q, want %q", c.got, c.silly, d, c.contain)
		}
	}
}
