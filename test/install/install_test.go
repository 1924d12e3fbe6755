//go:build vmtest

// Package install tests luksmount as a user gets it: `make dist`'s linux/amd64 archive unpacked
// into a fresh prefix outside the source tree, run from an unrelated directory. doctor --json
// proves the guest images came from the prefix (the source-tree fallback must not be what
// makes it pass); selftest is run from the same install, as a person accepting a release would.
package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/libnfs"
)

const passphrase = "install-test passphrase 7"

var (
	prefix  string // the unpacked archive
	bin     string // prefix/bin/luksmount
	version string // from the archive's name
	work    string // scratch directory outside the source tree
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	root, _ := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	var err error
	if work, err = os.MkdirTemp("", "lminst"); err != nil { // short: unix socket paths
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	if strings.HasPrefix(work, root+string(filepath.Separator)) {
		fmt.Fprintf(os.Stderr, "the scratch directory %s is inside the source tree\n", work)
		return 1
	}
	out := filepath.Join(work, "dist")
	cmd := exec.Command("./build.sh", "dist", "-o", out, "linux/amd64")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build.sh dist: %v\n%s", err, b)
		return 1
	}
	archives, _ := filepath.Glob(filepath.Join(out, "luksmount-*-linux-amd64.tar.gz"))
	if len(archives) != 1 {
		fmt.Fprintf(os.Stderr, "want one linux/amd64 archive in %s, got %q\n", out, archives)
		return 1
	}
	name := strings.TrimSuffix(filepath.Base(archives[0]), ".tar.gz")
	version = strings.TrimSuffix(strings.TrimPrefix(name, "luksmount-"), "-linux-amd64")
	if err := unpack(archives[0], filepath.Join(work, "opt")); err != nil {
		fmt.Fprintf(os.Stderr, "unpack %s: %v\n", archives[0], err)
		return 1
	}
	prefix = filepath.Join(work, "opt", name)
	bin = filepath.Join(prefix, "bin", "luksmount")
	return m.Run()
}

// unpack extracts a tar.gz as a user's tar would (regular files and directories only).
func unpack(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode))
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, tr); err != nil {
				w.Close()
				return err
			}
			w.Close()
		default:
			return fmt.Errorf("unexpected entry type %c for %s", h.Typeflag, h.Name)
		}
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// lm runs the installed binary from an unrelated working directory with private state dirs.
func lm(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "LUKSMOUNT_RUNTIME_DIR="+filepath.Join(home, "run"), "LUKSMOUNT_LOG_DIR="+filepath.Join(home, "log"), "TMPDIR="+home)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("luksmount %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func must(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	r := lm(t, home, stdin, args...)
	if r.code != 0 {
		t.Fatalf("luksmount %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func newHome(t *testing.T) string {
	home, err := os.MkdirTemp(work, "h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r := lm(t, home, "", "status", "--json"); strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("sessions left running: %s", r.stdout)
			lm(t, home, "", "stop", "--all", "--force")
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(home, "log", "*"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("--- %s\n%s", l, b)
			}
		}
	})
	return home
}

type session struct {
	Target        string `json:"target"`
	NFSAddress    string `json:"nfs_address"`
	Export        string `json:"export"`
	State         string `json:"state"`
	VMPid         int    `json:"vm_pid"`
	SupervisorPid int    `json:"supervisor_pid"`
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// TestInstalledArchive: version, doctor, format, serve, a libnfs round trip, stop, all from
// the unpacked archive.
func TestInstalledArchive(t *testing.T) {
	home := newHome(t)
	if r := must(t, home, "", "version"); !strings.HasPrefix(r.stdout, "luksmount "+version+" (linux/amd64") {
		t.Fatalf("version says %q; want the release's %s", r.stdout, version)
	}

	r := lm(t, home, "", "doctor", "--json")
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name, Status, Message string
			Detail                map[string]string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	if r.code != 0 || !rep.OK {
		t.Errorf("doctor exit %d ok=%v on the CI machine:\n%s", r.code, rep.OK, r.stdout)
	}
	found := false
	for _, c := range rep.Checks {
		if c.Name != "images" {
			continue
		}
		found = true
		want := filepath.Join(prefix, "share", "luksmount", "amd64")
		if c.Status != "ok" || c.Detail["dir"] != want || c.Detail["source"] != "installed" {
			t.Fatalf("images check %+v; want ok from %s (installed)", c, want)
		}
	}
	if !found {
		t.Fatalf("doctor has no images check:\n%s", r.stdout)
	}

	img := filepath.Join(home, "vault.img")
	must(t, home, passphrase+"\n", "format", "--size", "64M", "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--accel", "tcg", "--label", "Inst", img)
	must(t, home, passphrase+"\n", "--no-mount", "--accel", "tcg", img)
	var ss []session
	if err := json.Unmarshal([]byte(must(t, home, "", "status", "--json").stdout), &ss); err != nil || len(ss) != 1 || ss[0].Target != img {
		t.Fatalf("status: %+v %v", ss, err)
	}
	s := ss[0]
	c := libnfs.Client{Addr: s.NFSAddress, Export: s.Export, UID: os.Getuid(), GID: os.Getgid()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	payload := bytes.Repeat([]byte("installed layout "), 60_000)
	if err := c.Put(ctx, "from-prefix.bin", payload); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Cat(ctx, "from-prefix.bin"); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back %d bytes (%v); want %d", len(got), err, len(payload))
	}
	must(t, home, "", "stop", img)
	deadline := time.Now().Add(30 * time.Second)
	for (alive(s.VMPid) || alive(s.SupervisorPid)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(s.VMPid) || alive(s.SupervisorPid) {
		t.Fatalf("QEMU %d / supervisor %d still running after stop", s.VMPid, s.SupervisorPid)
	}
	if log := must(t, home, "", "log", img).stdout; !strings.Contains(log, "synced=true unmounted=true closed=true") {
		t.Errorf("log lacks a clean shutdown:\n%s", log)
	}
}

// TestSelftest runs the installed binary's selftest (serve-only here: no NFS client in this
// kernel) and checks it passed and left nothing behind.
func TestSelftest(t *testing.T) {
	home := newHome(t)
	r := lm(t, home, "", "selftest", "--accel", "tcg")
	t.Logf("selftest:\n%s%s", r.stdout, r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, "PASS") {
		t.Fatalf("selftest exit %d", r.code)
	}
	for _, want := range []string{"(serve-only)", "format", "mount", "files", "eject", "clean end", "throughput: write"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(home, "lmself*")); len(left) > 0 {
		t.Errorf("selftest left %q behind", left)
	}
}

// TestSelftestInterrupted: Ctrl-C while the volume is served still stops the session and
// removes the image.
func TestSelftestInterrupted(t *testing.T) {
	home := newHome(t)
	cmd := exec.Command(bin, "selftest", "--accel", "tcg")
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "LUKSMOUNT_RUNTIME_DIR="+filepath.Join(home, "run"), "LUKSMOUNT_LOG_DIR="+filepath.Join(home, "log"), "TMPDIR="+home)
	pr, pw := io.Pipe()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	mounted := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		once := false
		for {
			n, err := pr.Read(buf)
			progress.Write(buf[:n])
			if !once && strings.Contains(progress.String(), "selftest: mount ok") {
				once = true
				close(mounted)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-mounted:
	case <-time.After(6 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("selftest never reached the mount:\n%s", progress.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	pw.Close()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	t.Logf("interrupted selftest (exit %d):\n%s", code, out.String())
	if code != 130 {
		t.Errorf("exit %d after SIGINT; want 130", code)
	}
	if r := must(t, home, "", "status", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("session still running after the interrupted selftest: %s", r.stdout)
	}
	if left, _ := filepath.Glob(filepath.Join(home, "lmself*")); len(left) > 0 {
		t.Errorf("the interrupted selftest left %q behind", left)
	}
}
