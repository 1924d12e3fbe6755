//go:build vmtest

// The stacks' harness (LVM, RAID, trim, resize): it runs the real luksmount binary; names start
// with st so the filesystems' harness can live beside it.

package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/selftest"
)

const stPass = "stacks-test passphrase 7"

var (
	stBinOnce sync.Once
	stBin     string
	stBinErr  error
)

// stBinary builds bin/luksmount once (it finds build/<arch> images next to it).
func stBinary(t testing.TB) string {
	stBinOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		stBin = filepath.Join(root, "bin", "luksmount")
		cmd := exec.Command("go", "build", "-o", stBin, "./cmd/luksmount")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			stBinErr = fmt.Errorf("cannot build luksmount: %v\n%s", err, out)
		}
	})
	if stBinErr != nil {
		t.Fatal(stBinErr)
	}
	return stBin
}

// stEnv is one isolated luksmount installation.
type stEnv struct {
	t        testing.TB
	bin, dir string
	run, log string
}

func newStEnv(t testing.TB) *stEnv {
	dir, err := os.MkdirTemp("", "lmst") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	e := &stEnv{t: t, bin: stBinary(t), dir: dir, run: filepath.Join(dir, "run"), log: filepath.Join(dir, "log")}
	t.Cleanup(func() {
		if r := e.lm("", "status", "--json"); r.code == 0 && strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("sessions left running at the end of the test: %s", r.stdout)
			e.lm("", "stop", "--all", "--force")
		}
		if t.Failed() {
			files, _ := filepath.Glob(filepath.Join(e.log, "*"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("--- %s (tail)\n%s", filepath.Base(f), b)
			}
		}
		os.RemoveAll(dir)
	})
	return e
}

type stResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r stResult) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

func (e *stEnv) lm(stdin string, args ...string) stResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(os.Environ(), "LUKSMOUNT_RUNTIME_DIR="+e.run, "LUKSMOUNT_LOG_DIR="+e.log)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := stResult{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("luksmount %s: %v", strings.Join(args, " "), err)
	}
	e.t.Logf("luksmount %s: exit %d in %s", strings.Join(args, " "), r.code, r.took.Round(time.Millisecond))
	return r
}

func (e *stEnv) must(want int, stdin string, args ...string) stResult {
	e.t.Helper()
	r := e.lm(stdin, args...)
	if r.code != want {
		e.t.Fatalf("luksmount %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
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

type stSession struct {
	Target     string `json:"target"`
	NFSAddress string `json:"nfs_address"`
	Export     string `json:"export"`
	State      string `json:"state"`
	FSType     string `json:"fstype"`
}

func (e *stEnv) session(target string) stSession {
	e.t.Helper()
	r := e.must(0, "", "status", "--json")
	var all []stSession
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	for _, s := range all {
		if s.Target == target {
			return s
		}
	}
	e.t.Fatalf("no session for %s in %s", target, r.stdout)
	return stSession{}
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
	img := filepath.Join(e.dir, name)
	args := append([]string{"format", "--size", size, "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--accel", "tcg"}, extra...)
	e.must(0, stPass+"\n", append(args, img)...)
	return img
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
