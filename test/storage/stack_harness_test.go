//go:build vmtest

// The stacks' harness (LVM, RAID, trim, resize): it runs the real luksmount binary; names start
// with st so the filesystems' harness can live beside it.

package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/selftest"
	"github.com/luksmount/luksmount/test/clitest"
)

// The harness is test/clitest's; these names are the package's own for its tests.

const stPass = "stacks-test passphrase 7"

// stBinary builds bin/luksmount once (it finds build/<arch> images next to it).
func stBinary(t testing.TB) string {
	b, err := clitest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stEnv is one isolated luksmount installation.
type stEnv struct {
	t        testing.TB
	bin, dir string
	run, log string
	cl       *clitest.Env
}

func newStEnv(t testing.TB) *stEnv {
	c := clitest.New(t, "lmst")
	c.LogEachRun, c.TailOnError = true, 6000
	return &stEnv{t: t, bin: c.Bin, dir: c.Dir, run: c.Run, log: c.Log, cl: c}
}

// stResult is a clitest.Result (its String) with the fields this package's tests read.
type stResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
	clitest.Result
}

func fromResult(r clitest.Result) stResult { return stResult{r.Code, r.Stdout, r.Stderr, r.Took, r} }

func (e *stEnv) lm(stdin string, args ...string) stResult {
	e.t.Helper()
	return fromResult(e.cl.LM(stdin, args...))
}

func (e *stEnv) must(want int, stdin string, args ...string) stResult {
	e.t.Helper()
	return fromResult(e.cl.Must(want, stdin, args...))
}

// oneLine checks a failure printed exactly one line on stderr and returns it.
func (e *stEnv) oneLine(r stResult, want string) string {
	e.t.Helper()
	// Progress lines come first; the error is the last line, and only one.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	msg := lines[len(lines)-1]
	if !strings.Contains(msg, want) || (len(lines) > 1 && strings.Contains(lines[len(lines)-2], "cannot")) {
		e.t.Fatalf("want the last stderr line (and only it) to say %q, got %s", want, r)
	}
	return msg
}

// stSession is an entry of `status --json`.
type stSession = clitest.Session

func (e *stEnv) session(target string) stSession {
	e.t.Helper()
	s, r, ok := e.cl.Find(target)
	if !ok {
		e.t.Fatalf("no session for %s in %s", target, r.Stdout)
	}
	return s
}

// nfs connects to target's export.
func (e *stEnv) nfs(target string) selftest.FS {
	e.t.Helper()
	s := e.session(target)
	fs, err := selftest.DialNFS(s.NFSAddress, s.Export)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { fs.Close() })
	return fs
}

// format makes an image with a cheap (but real argon2id) KDF.
func (e *stEnv) format(name, size string, extra ...string) string {
	e.t.Helper()
	return e.cl.Format(stPass, name, size, extra...)
}

// allocated is the bytes a file takes on disk (st_blocks).
func allocated(t testing.TB, path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func fileSize(t testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func shaHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// noise is n bytes that do not compress or dedupe (seeded, so a failure reproduces).
func noise(n int, seed byte) []byte {
	b := make([]byte, n)
	h := sha256.Sum256([]byte{seed})
	for i := 0; i < n; i += len(h) {
		copy(b[i:], h[:])
		h = sha256.Sum256(h[:])
	}
	return b
}

func fileSha(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return shaHex(b)
}
