//go:build vmtest

// Package faults drives the real luksmount binary through the faults a backup drive meets: it is
// unplugged mid-write, it fills up, its filesystem is damaged. Each case checks what the user is
// told (log, status, exit code), that no command hangs, and that no fsync'd byte is lost.
package faults

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/clitest"
	"github.com/luksmount/luksmount/test/libnfs"
)

// The harness is test/clitest's; these names are the package's own for its tests.

const passphrase = "faults-test passphrase 7"

var root = clitest.Root

func TestMain(m *testing.M) { clitest.Main(m) }

// lmEnv is one private luksmount installation (runtime and log directories).
type lmEnv struct {
	t        testing.TB
	dir      string
	run, log string
	cl       *clitest.Env
}

func newLMEnv(t testing.TB) *lmEnv {
	c := clitest.New(t, "lmflt")
	return &lmEnv{t: t, dir: c.Dir, run: c.Run, log: c.Log, cl: c}
}

// run is a clitest.Result (its String) with the fields this package's tests read.
type run struct {
	code           int
	stdout, stderr string
	took           time.Duration
	clitest.Result
}

func fromResult(r clitest.Result) run { return run{r.Code, r.Stdout, r.Stderr, r.Took, r} }

func (e *lmEnv) lm(stdin string, args ...string) run {
	e.t.Helper()
	return fromResult(e.cl.LM(stdin, args...))
}

func (e *lmEnv) must(want int, stdin string, args ...string) run {
	e.t.Helper()
	return fromResult(e.cl.Must(want, stdin, args...))
}

// state is an entry of `status --json`.
type state = clitest.Session

func (e *lmEnv) status(target string) (state, run) {
	e.t.Helper()
	s, r, _ := e.cl.Find(target)
	return s, fromResult(r)
}

// format makes an image with a cheap (but real argon2id) KDF, or plain ext4 with typ "none".
func (e *lmEnv) format(name, size, typ string) string {
	e.t.Helper()
	return e.cl.Format(passphrase, name, size, "--type", typ)
}

// serve mounts target with --no-mount and returns its status entry.
func (e *lmEnv) serve(target string) state {
	e.t.Helper()
	e.must(0, passphrase+"\n", "--no-mount", "--accel", "tcg", target)
	s, _ := e.status(target)
	if s.NFSAddress == "" {
		e.t.Fatalf("no NFS address for %s: %+v", target, s)
	}
	return s
}

func (e *lmEnv) sessionLog(s state) string {
	b, _ := os.ReadFile(s.Log)
	return string(b)
}

func nfs(s state) libnfs.Client { return s.NFS() }

func nfsPort(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func tctx(t testing.TB, d time.Duration) context.Context { return clitest.Context(t, d) }
