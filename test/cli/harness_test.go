//go:build vmtest

// Package cli drives the real luksmount binary end to end on Linux: format, serve with the
// passphrase on stdin, status --json, a real NFS client through the reported address, stop; and
// every kind of bad input and fault, each with its own message, exit code and an untouched image.
package cli

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/clitest"
	"github.com/luksmount/luksmount/test/libnfs"
)

// The harness is test/clitest's; these names are the package's own for its tests.

const passphrase = "cli-test passphrase 42"

func TestMain(m *testing.M) { clitest.Main(m) }

// env is one isolated luksmount installation: its own runtime and log directories.
type env struct {
	t   testing.TB
	dir string
	run string
	log string
	cl  *clitest.Env
}

func newEnv(t testing.TB) *env {
	c := clitest.New(t, "lmcli")
	c.TailOnError = 6000
	return &env{t: t, dir: c.Dir, run: c.Run, log: c.Log, cl: c}
}

func (e *env) dumpLogs() { e.cl.DumpLogs() }

// result is a clitest.Result (its String) with the fields this package's tests read.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
	clitest.Result
}

func fromResult(r clitest.Result) result { return result{r.Code, r.Stdout, r.Stderr, r.Took, r} }

// lm runs luksmount with stdin and the env's directories.
func (e *env) lm(stdin string, args ...string) result {
	e.t.Helper()
	return fromResult(e.cl.LM(stdin, args...))
}

// mustLM runs luksmount and fails the test unless it exits with want.
func (e *env) mustLM(want int, stdin string, args ...string) result {
	e.t.Helper()
	return fromResult(e.cl.Must(want, stdin, args...))
}

// session is one entry of `status --json` (the README's stable keys).
type session = clitest.Session

func (e *env) status() []session {
	e.t.Helper()
	s, _ := e.cl.Status()
	return s
}

func (e *env) find(target string) session {
	e.t.Helper()
	s, r, ok := e.cl.Find(target)
	if !ok {
		e.t.Fatalf("no session for %s in status: %s", target, r.Stdout)
	}
	return s
}

// format makes a fresh image with a cheap (but real argon2id) KDF.
func (e *env) format(name, size string, extra ...string) string {
	e.t.Helper()
	return e.cl.Format(passphrase, name, size, extra...)
}

func nfsClient(s session) libnfs.Client { return s.NFS() }

func sha(t testing.TB, path string) string { return clitest.FileSHA(t, path) }

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

func ctx(t testing.TB) context.Context { return clitest.Context(t, 2*time.Minute) }
