//go:build linux || darwin

package workload

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Main(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestMainJSONOutputParses(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := runMain(t, "-dir", dir, "-run", "^(files|rename|fsx)$", "-json", "-fsx-ops", "200", "-seed", "7")
	if err != nil {
		t.Fatalf("Main: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	rep, err := ParseReport(strings.NewReader(out))
	if err != nil {
		t.Fatalf("ParseReport: %v\n%s", err, out)
	}
	if rep.Passed != 3 || rep.Failed != 0 || len(rep.Results) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for i, name := range []string{"files", "rename", "fsx"} {
		r := rep.Results[i]
		if r.Name != name || !r.OK || r.Details[0] != "seed=7" {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if !strings.HasSuffix(out, "3 passed, 0 failed, 0 skipped\n") {
		t.Errorf("stdout does not end with the summary:\n%s", out)
	}
	if !strings.Contains(errOut, "seed 7") {
		t.Errorf("stderr %q does not print the seed", errOut)
	}
}

func TestMainErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args    []string
		code    int
		message string
	}{
		{nil, 2, "-dir is required"},
		{[]string{"-dir", dir, "-run", "("}, 2, "bad -run regexp"},
		{[]string{"-dir", dir, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-dir", dir, "-run", "^nope$"}, 2, "no scenario matches"},
		{[]string{"-dir", dir, "-manifest", filepath.Join(dir, "m.json")}, 2, "inside -dir"},
		{[]string{"-dir", dir, "-outside", dir}, 2, "overlaps -dir"},
		{[]string{"-dir", filepath.Join(dir, "missing")}, 2, "cannot use target directory"},
		{[]string{"-nosuchflag"}, 2, "flag provided but not defined"},
		{[]string{"-h"}, 0, ""},
	}
	for _, c := range cases {
		_, _, err := runMain(t, c.args...)
		if got := ExitCode(err); got != c.code {
			t.Errorf("%q: exit code %d (%v), want %d", c.args, got, err, c.code)
		}
		if c.message != "" && (err == nil || !strings.Contains(err.Error(), c.message)) {
			t.Errorf("%q: error %v, want it to mention %q", c.args, err, c.message)
		}
	}
}

func TestMainReportsFailure(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(t.TempDir(), "never-written.json")
	out, _, err := runMain(t, "-dir", dir, "-run", "^verify-manifest$", "-json", "-manifest", manifest)
	if !errors.Is(err, ErrFailed) || ExitCode(err) != 1 {
		t.Fatalf("err %v (exit %d), want ErrFailed and exit 1", err, ExitCode(err))
	}
	rep, perr := ParseReport(strings.NewReader(out))
	if perr != nil || rep.Failed != 1 || rep.Results[0].OK || !strings.Contains(rep.Results[0].Error, "cannot read manifest") {
		t.Fatalf("report %+v, %v", rep, perr)
	}
}

func TestMainList(t *testing.T) {
	out, _, err := runMain(t, "-list")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Scenarios() {
		if !strings.Contains(out, s.Name+" ") {
			t.Errorf("-list does not show %s:\n%s", s.Name, out)
		}
	}
}

func TestParseReportRejectsTruncatedOrInconsistentOutput(t *testing.T) {
	line := `{"name":"files","ok":true,"duration_ms":3}` + "\n"
	for _, bad := range []string{
		line,                                     // no summary: the runner died
		line + "0 passed, 1 failed, 0 skipped\n", // summary disagrees
		line + "garbage\n1 passed, 0 failed, 0 skipped\n",
		"{not json\n1 passed, 0 failed, 0 skipped\n",
	} {
		if _, err := ParseReport(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseReport accepted %q", bad)
		}
	}
	rep, err := ParseReport(strings.NewReader(line + "1 passed, 0 failed, 0 skipped\n"))
	if err != nil || rep.Passed != 1 || rep.Results[0].Name != "files" {
		t.Fatalf("good output: %+v, %v", rep, err)
	}
}

// The real binary: exit statuses and stdout as a harness sees them.
func TestRunnerBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "luksmount-workload")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/luksmount-workload")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "-dir", dir, "-run", "^(hardlinks|utimes)$", "-json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("runner: %v\n%s", err, out)
	}
	if rep, err := ParseReport(bytes.NewReader(out)); err != nil || rep.Passed != 2 {
		t.Fatalf("report %+v, %v\n%s", rep, err, out)
	}
	cmd = exec.Command(bin, "-dir", dir, "-run", "^verify-manifest$", "-json", "-manifest", filepath.Join(t.TempDir(), "none"))
	out, err = cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !bytes.HasSuffix(out, []byte("0 passed, 1 failed, 0 skipped\n")) {
		t.Fatalf("failing run: %v\n%s", err, out)
	}
	cmd = exec.Command(bin)
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("no -dir: %v, want exit 2", err)
	}
}

func TestMainTimesOutAHungScenario(t *testing.T) {
	var code int
	exited := make(chan struct{})
	exit = func(c int) { code = c; close(exited) }
	testHook = func(ev Event) {
		if ev.Stage == StagePopulated {
			<-exited // hang until the watchdog gives up
		}
	}
	t.Cleanup(func() { exit, testHook = os.Exit, nil })
	out, _, _ := runMain(t, "-dir", t.TempDir(), "-run", "^(files|many-files)$", "-files", "10", "-json", "-timeout", "300ms")
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	// What the harness reads is everything up to the watchdog's summary.
	first := out[:strings.Index(out, " skipped\n")+len(" skipped\n")]
	rep, err := ParseReport(strings.NewReader(first))
	if err != nil || rep.Passed != 1 || rep.Failed != 1 {
		t.Fatalf("report %+v, %v\n%s", rep, err, out)
	}
	if r := rep.Results[1]; r.Name != "many-files" || !strings.Contains(r.Error, "timed out") {
		t.Fatalf("hung scenario reported as %+v", r)
	}
}
