//go:build vmtest

// Package faults drives the real luksmount binary through the faults a backup drive meets: it is
// unplugged mid-write, it fills up, its filesystem is damaged. Each case checks what the user is
// told (log, status, exit code), that no command hangs, and that no fsync'd byte is lost.
package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/libnfs"
)

const passphrase = "faults-test passphrase 7"

var root, bin string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	root = filepath.Join(filepath.Dir(file), "..", "..")
	// In the repo's bin/ so it finds build/<arch> images, as `make` leaves it.
	bin = filepath.Join(root, "bin", "luksmount")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/luksmount")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build luksmount: %v\n%s", err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// lmEnv is one private luksmount installation (runtime and log directories).
type lmEnv struct {
	t        testing.TB
	dir      string
	run, log string
}

func newLMEnv(t testing.TB) *lmEnv {
	dir, err := os.MkdirTemp("", "lmflt") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	e := &lmEnv{t: t, dir: dir, run: filepath.Join(dir, "run"), log: filepath.Join(dir, "log")}
	t.Cleanup(func() {
		if r := e.lm("", "status", "--json"); r.code == 0 && strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("sessions left running: %s", r.stdout)
			e.lm("", "stop", "--all", "--force")
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(e.log, "*"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("--- %s (tail)\n%s", filepath.Base(f), b)
			}
		}
		os.RemoveAll(dir)
	})
	return e
}

type run struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r run) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

func (e *lmEnv) lm(stdin string, args ...string) run {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LUKSMOUNT_RUNTIME_DIR="+e.run, "LUKSMOUNT_LOG_DIR="+e.log)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String(), took: time.Since(t0)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("luksmount %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (e *lmEnv) must(want int, stdin string, args ...string) run {
	e.t.Helper()
	r := e.lm(stdin, args...)
	if r.code != want {
		e.t.Fatalf("luksmount %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// state is the part of `status --json` these tests read.
type state struct {
	ID         string `json:"id"`
	Target     string `json:"target"`
	State      string `json:"state"`
	Fault      string `json:"fault"`
	ReadOnly   bool   `json:"read_only"`
	NFSAddress string `json:"nfs_address"`
	Export     string `json:"export"`
	VMPid      int    `json:"vm_pid"`
	Log        string `json:"log"`
}

func (e *lmEnv) status(target string) (state, run) {
	e.t.Helper()
	r := e.must(0, "", "status", "--json")
	var sts []state
	if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	for _, s := range sts {
		if s.Target == target {
			return s, r
		}
	}
	return state{}, r
}

// format makes an image with a cheap (but real argon2id) KDF, or plain ext4 with typ "none".
func (e *lmEnv) format(name, size, typ string) string {
	e.t.Helper()
	img := filepath.Join(e.dir, name)
	e.must(0, passphrase+"\n", "format", "--size", size, "--type", typ, "--pbkdf-memory", "32768",
		"--pbkdf-force-iterations", "4", "--accel", "tcg", img)
	return img
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

func nfs(s state) libnfs.Client {
	return libnfs.Client{Addr: s.NFSAddress, Export: s.Export, UID: os.Getuid(), GID: os.Getgid()}
}

func nfsPort(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func tctx(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}
