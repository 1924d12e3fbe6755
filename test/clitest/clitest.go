// Package clitest runs the real luksmount binary from VM tests (test/cli, test/faults,
// test/storage): each Env is a private installation (runtime and log directories), a test that
// leaves a session running fails, and a failed test logs the tail of every session log and VM
// console.
package clitest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/libnfs"
)

// Root is the repository's top directory.
var Root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

var (
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// Binary builds bin/luksmount once per test binary and returns its path: in the repository's
// bin/, as `make` leaves it, so that it finds the build/<arch> images.
func Binary() (string, error) {
	buildOnce.Do(func() {
		bin = filepath.Join(Root, "bin", "luksmount")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/luksmount")
		cmd.Dir = Root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("cannot build luksmount: %v\n%s", err, out)
		}
	})
	return bin, buildErr
}

// Main is a TestMain: it builds the binary first, and runs no test without it.
func Main(m *testing.M) {
	if _, err := Binary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Env is one isolated luksmount installation.
type Env struct {
	T           testing.TB
	Bin         string
	Dir         string // scratch: images go here
	Run, Log    string // LUKSMOUNT_RUNTIME_DIR, LUKSMOUNT_LOG_DIR
	LogEachRun  bool   // t.Log every command with its exit code and duration
	TailOnError int    // bytes of each log and console shown when the test failed (0 = 8000)
}

// New makes an Env under a short temp directory named for prefix (unix socket paths are
// limited). At cleanup, sessions still running fail the test and are stopped (forced), a failed
// test logs the log and console tails, and the directory is removed.
func New(t testing.TB, prefix string) *Env {
	t.Helper()
	b, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Bin: b, Dir: dir, Run: filepath.Join(dir, "run"), Log: filepath.Join(dir, "log")}
	t.Cleanup(func() {
		if r := e.LM("", "status", "--json"); r.Code == 0 && strings.TrimSpace(r.Stdout) != "[]" {
			t.Errorf("sessions left running at the end of the test: %s", r.Stdout)
			e.LM("", "stop", "--all", "--force")
		}
		if t.Failed() {
			e.DumpLogs()
		}
		os.RemoveAll(dir)
	})
	return e
}

// DumpLogs logs the tail of each session log and VM console.
func (e *Env) DumpLogs() {
	n := e.TailOnError
	if n <= 0 {
		n = 8000
	}
	files, _ := filepath.Glob(filepath.Join(e.Log, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > n {
			b = b[len(b)-n:]
		}
		e.T.Logf("--- %s (tail)\n%s", filepath.Base(f), b)
	}
}

// Result is one luksmount run.
type Result struct {
	Code           int
	Stdout, Stderr string
	Took           time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// LM runs luksmount with stdin and the Env's directories (5 minutes at most).
func (e *Env) LM(stdin string, args ...string) Result {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Env = append(os.Environ(), "LUKSMOUNT_RUNTIME_DIR="+e.Run, "LUKSMOUNT_LOG_DIR="+e.Log)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		e.T.Fatalf("luksmount %s: %v", strings.Join(args, " "), err)
	}
	if e.LogEachRun {
		e.T.Logf("luksmount %s: exit %d in %s", strings.Join(args, " "), r.Code, r.Took.Round(time.Millisecond))
	}
	return r
}

// Must runs luksmount and fails the test unless it exits with want.
func (e *Env) Must(want int, stdin string, args ...string) Result {
	e.T.Helper()
	r := e.LM(stdin, args...)
	if r.Code != want {
		e.T.Fatalf("luksmount %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// Format makes Dir/name with a cheap (but real argon2id) KDF under TCG, the passphrase on
// stdin; extra are more format flags. It returns the image's path.
func (e *Env) Format(passphrase, name, size string, extra ...string) string {
	e.T.Helper()
	img := filepath.Join(e.Dir, name)
	args := append([]string{"format", "--size", size, "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--accel", "tcg"}, extra...)
	e.Must(0, passphrase+"\n", append(args, img)...)
	return img
}

// Session is one entry of `status --json` (the README's stable keys).
type Session struct {
	ID            string `json:"id"`
	Target        string `json:"target"`
	Label         string `json:"label"`
	FSType        string `json:"fstype"`
	Encrypted     bool   `json:"encrypted"`
	ReadOnly      bool   `json:"read_only"`
	Mountpoint    string `json:"mountpoint"`
	NFSAddress    string `json:"nfs_address"`
	Export        string `json:"export"`
	State         string `json:"state"`
	Fault         string `json:"fault"`
	VMPid         int    `json:"vm_pid"`
	SupervisorPid int    `json:"supervisor_pid"`
	MemoryMiB     int    `json:"memory_mib"`
	Started       string `json:"started"`
	Log           string `json:"log"`
}

// Status is `status --json`, which must succeed and parse.
func (e *Env) Status() ([]Session, Result) {
	e.T.Helper()
	r := e.Must(0, "", "status", "--json")
	var s []Session
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		e.T.Fatalf("status --json is not a JSON array of sessions: %v\n%s", err, r.Stdout)
	}
	return s, r
}

// Find is target's session in Status (ok false: none).
func (e *Env) Find(target string) (s Session, r Result, ok bool) {
	e.T.Helper()
	all, r := e.Status()
	for _, s := range all {
		if s.Target == target {
			return s, r, true
		}
	}
	return Session{}, r, false
}

// NFS is a client of s's export as the test's own user.
func (s Session) NFS() libnfs.Client {
	return libnfs.Client{Addr: s.NFSAddress, Export: s.Export, UID: os.Getuid(), GID: os.Getgid()}
}

// Context is a context that ends after d or with the test.
func Context(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// FileSHA is the hex SHA-256 of path's contents.
func FileSHA(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
