//go:build vmtest

// Package cli drives the real luksmount binary end to end on Linux: format, serve with the
// passphrase on stdin, status --json, a real NFS client through the reported address, stop; and
// every kind of bad input and fault, each with its own message, exit code and an untouched image.
package cli

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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/libnfs"
)

const passphrase = "cli-test passphrase 42"

var bin string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	// The binary sits in the repo's bin/ (as `make` leaves it) so it finds build/<arch> images.
	bin = filepath.Join(root, "bin", "luksmount")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/luksmount")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build luksmount: %v\n%s", err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// env is one isolated luksmount installation: its own runtime and log directories.
type env struct {
	t   testing.TB
	dir string
	run string
	log string
}

func newEnv(t testing.TB) *env {
	dir, err := os.MkdirTemp("", "lmcli") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, run: filepath.Join(dir, "run"), log: filepath.Join(dir, "log")}
	t.Cleanup(func() {
		// Whatever a test left running is stopped, and reported as a failure.
		if out := e.lm("", "status", "--json"); out.code == 0 && strings.TrimSpace(out.stdout) != "[]" {
			t.Errorf("sessions left running at the end of the test: %s", out.stdout)
			e.lm("", "stop", "--all", "--force")
		}
		if t.Failed() {
			e.dumpLogs()
		}
		os.RemoveAll(dir)
	})
	return e
}

func (e *env) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(e.log, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		e.t.Logf("--- %s (tail)\n%s", filepath.Base(f), b)
	}
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// lm runs luksmount with stdin and the env's directories.
func (e *env) lm(stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LUKSMOUNT_RUNTIME_DIR="+e.run, "LUKSMOUNT_LOG_DIR="+e.log)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("luksmount %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustLM runs luksmount and fails the test unless it exits with want.
func (e *env) mustLM(want int, stdin string, args ...string) result {
	e.t.Helper()
	r := e.lm(stdin, args...)
	if r.code != want {
		e.t.Fatalf("luksmount %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// session is one entry of `status --json` (the README's stable keys).
type session struct {
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
	VMPid         int    `json:"vm_pid"`
	SupervisorPid int    `json:"supervisor_pid"`
	MemoryMiB     int    `json:"memory_mib"`
	Started       string `json:"started"`
	Log           string `json:"log"`
}

func (e *env) status() []session {
	e.t.Helper()
	r := e.mustLM(0, "", "status", "--json")
	var s []session
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("status --json is not a JSON array of sessions: %v\n%s", err, r.stdout)
	}
	return s
}

func (e *env) find(target string) session {
	e.t.Helper()
	for _, s := range e.status() {
		if s.Target == target {
			return s
		}
	}
	e.t.Fatalf("no session for %s in status", target)
	return session{}
}

// format makes a fresh image with a cheap (but real argon2id) KDF.
func (e *env) format(name, size string, extra ...string) string {
	e.t.Helper()
	img := filepath.Join(e.dir, name)
	args := append([]string{"format", "--size", size, "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--accel", "tcg"}, extra...)
	args = append(args, img)
	e.mustLM(0, passphrase+"\n", args...)
	return img
}

func nfsClient(s session) libnfs.Client {
	return libnfs.Client{Addr: s.NFSAddress, Export: s.Export, UID: os.Getuid(), GID: os.Getgid()}
}

func sha(t testing.TB, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie is gone for our purposes.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// waitGone waits until none of pids is alive.
func waitGone(t testing.TB, within time.Duration, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		any := false
		for _, p := range pids {
			if alive(p) {
				any = true
			}
		}
		if !any {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("processes %v still alive after %s", pids, within)
}

// qemuFor lists QEMU processes whose command line names path.
func qemuFor(path string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte("qemu-system")) && bytes.Contains(b, []byte(path)) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}
