//go:build linux || darwin

package workload

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Each check must be able to fail: these tests break the filesystem under a scenario through Options.Hook
// and assert that the scenario notices and leaves its directory for diagnosis.

// flipByte inverts the byte at off (clamped into the file) behind the scenario's back.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("fault injection: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		t.Fatalf("fault injection: cannot corrupt %s (size %v, %v)", path, st.Size(), err)
	}
	off = min(off, st.Size()-1)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// onceAt returns a hook that calls fault the n-th time (from 1) a matching event arrives.
func onceAt(stage Stage, n int, fault func(Event)) func(Event) {
	var mu sync.Mutex
	seen := 0
	return func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Stage != stage {
			return
		}
		seen++
		if seen == n {
			fault(ev)
		}
	}
}

func expectFailure(t *testing.T, dir, name string, opts Options, wantErr ...string) Result {
	t.Helper()
	r := runNamed(t, dir, "^"+name+"$", opts)[0]
	if r.OK {
		t.Fatalf("%s passed on a broken filesystem; details %q", name, r.Details)
	}
	for _, w := range wantErr {
		if !strings.Contains(r.Error, w) {
			t.Errorf("%s error %q does not mention %q", name, r.Error, w)
		}
	}
	if left := entries(t, dir); len(left) != 1 || !strings.HasPrefix(left[0], name+".") {
		t.Errorf("after failure the directory holds %q, want the scenario's directory left in place", left)
	}
	if !strings.Contains(strings.Join(r.Details, "\n"), "left in place for diagnosis") {
		t.Errorf("details %q do not say where the evidence is", r.Details)
	}
	return r
}

func TestFilesDetectsCorruption(t *testing.T) {
	for n := 1; n <= 6; n++ { // each verification step in turn (the first file is empty: skip it)
		if n == 1 {
			continue
		}
		opts := testOptions(t)
		opts.Hook = onceAt(StageWritten, n, func(ev Event) { flipByte(t, ev.Path, 4100) })
		expectFailure(t, t.TempDir(), "files", opts, "first difference at offset", "want [", "got [")
	}
}

func TestManyFilesDetectsIncompleteListing(t *testing.T) {
	opts := testOptions(t)
	opts.Hook = onceAt(StagePopulated, 1, func(ev Event) {
		if err := os.Remove(filepath.Join(ev.Path, "file-000123")); err != nil {
			t.Fatal(err)
		}
	})
	expectFailure(t, t.TempDir(), "many-files", opts, `missing 1 ("file-000123")`)

	opts.Hook = onceAt(StagePopulated, 1, func(ev Event) {
		if err := os.WriteFile(filepath.Join(ev.Path, "intruder"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	expectFailure(t, t.TempDir(), "many-files", opts, `extra 1 ("intruder")`)
}

func TestUnicodeNamesDetectsALostName(t *testing.T) {
	opts := testOptions(t)
	opts.Hook = onceAt(StagePopulated, 1, func(ev Event) {
		if err := os.Remove(filepath.Join(ev.Path, "cafe\u0301")); err != nil {
			t.Fatal(err)
		}
	})
	expectFailure(t, t.TempDir(), "unicode-names", opts, "missing 1")
}

func TestFSXDetectsCorruption(t *testing.T) {
	opts := testOptions(t)
	opts.FSXMaxSize = 64 << 10
	opts.Hook = onceAt(StageWritten, 1, func(ev Event) {
		st, err := os.Stat(ev.Path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == 0 {
			if err := os.WriteFile(ev.Path, []byte{1}, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		flipByte(t, ev.Path, st.Size()/2)
	})
	r := expectFailure(t, t.TempDir(), "fsx", opts, "op 63:", "full-file check", "recent ops: #")
	if !strings.Contains(strings.Join(r.Details, "\n"), "-seed 42") {
		t.Errorf("details %q do not say how to reproduce", r.Details)
	}
}

func TestConcurrentWritersDetectsCorruption(t *testing.T) {
	for _, n := range []int{1, 5} { // a private file, then the shared pwrite file
		opts := testOptions(t)
		opts.Hook = onceAt(StageWritten, n, func(ev Event) { flipByte(t, ev.Path, 300000) })
		expectFailure(t, t.TempDir(), "concurrent-writers", opts, "first difference at offset 300000")
	}
}

func TestSparseDetectsDataInHoles(t *testing.T) {
	opts := testOptions(t)
	opts.Hook = onceAt(StageWritten, 1, func(ev Event) {
		f, err := os.OpenFile(ev.Path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{7}, 1000); err != nil {
			t.Fatal(err)
		}
	})
	expectFailure(t, t.TempDir(), "sparse", opts, "hole", "offset 1000")
}

func TestHardlinksDetectsUnsharedContent(t *testing.T) {
	opts := testOptions(t)
	opts.Hook = onceAt(StageWritten, 1, func(ev Event) { flipByte(t, ev.Path, 5003) })
	expectFailure(t, t.TempDir(), "hardlinks", opts, "offset 5003")
}

func TestVerifyManifestDetectsLossAndCorruption(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t)
	if r := runNamed(t, dir, "^write-fsync-record$", opts)[0]; !r.OK {
		t.Fatalf("record: %s", r.Error)
	}
	b, err := os.ReadFile(opts.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Files) < 5 {
		t.Fatalf("manifest records %d files", len(m.Files))
	}
	big := filepath.Join(dir, m.Files[len(m.Files)-3].Path)
	flipByte(t, big, 12345)
	if err := os.Remove(filepath.Join(dir, m.Files[2].Path)); err != nil {
		t.Fatal(err)
	}
	r := runNamed(t, dir, "^verify-manifest$", opts)[0]
	if r.OK {
		t.Fatal("verify-manifest passed after a file was corrupted and another removed")
	}
	if !strings.Contains(r.Error, "2 of ") {
		t.Errorf("error %q does not count both bad files", r.Error)
	}
	all := strings.Join(r.Details, "\n")
	if !strings.Contains(all, "sha256") || !strings.Contains(all, "no such file") {
		t.Errorf("details %q do not name both faults", r.Details)
	}
}
