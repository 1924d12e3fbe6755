package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(append([]string{"luksmount"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func isolate(t *testing.T) {
	t.Setenv(session.EnvRuntimeDir, filepath.Join(t.TempDir(), "run"))
	t.Setenv(session.EnvLogDir, filepath.Join(t.TempDir(), "logs"))
}

func TestUsageErrors(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no target given"},
		{[]string{"mount"}, "no target given"},
		{[]string{"a.img", "/mnt/x", "extra"}, "too many arguments"},
		// One --memory floor for every command that boots a VM (qemu.MinMemoryMiB).
		{[]string{"--memory", "12", "a.img"}, "--memory 12 is too little: the VM needs at least 192 MiB to unpack its image; give --memory 192 or more"},
		{[]string{"mount", "--memory", "191", "a.img"}, "--memory 191 is too little: the VM needs at least 192 MiB"},
		{[]string{"--memory", "70000", "a.img"}, "--memory 70000 is out of range: give MiB between 192 and 65536"},
		{[]string{"format", "--memory", "128", "--size", "256M", "x.img"}, "--memory 128 is too little: the VM needs at least 192 MiB to unpack its image; give --memory 192 or more"},
		{[]string{"format", "--memory", "0", "x.img"}, "--memory 0 is too little"},
		{[]string{"check", "--memory", "128", "x.img"}, "--memory 128 is too little: the VM needs at least 192 MiB to unpack its image; give --memory 192 or more"},
		{[]string{"check", "--memory", "100000", "x.img"}, "--memory 100000 is out of range"},
		{[]string{"--accel", "xen", "a.img"}, `--accel "xen" is unknown`},
		{[]string{"--owner", "alice", "a.img"}, `--owner "alice" is not UID:GID or none`},
		{[]string{"--no-mount", "a.img", "/mnt/x"}, "--no-mount and a MOUNTPOINT contradict"},
		{[]string{"--bogus", "a.img"}, "flag provided but not defined: -bogus"},
		{[]string{"format"}, "format takes one TARGET"},
		{[]string{"format", "--size", "lots", "x.img"}, `--size "lots" is not a size`},
		{[]string{"format", "--size", "1M", "x.img"}, "too small"},
		{[]string{"format", "--type", "luks3", "x.img"}, `--type "luks3" is unknown`},
		{[]string{"stop", "--all", "x.img"}, "give a TARGET or --all, not both"},
		{[]string{"status", "extra"}, "status takes no arguments"},
	} {
		code, _, stderr := run(t, "", tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "luksmount: ") {
			t.Errorf("%v: error is not one line starting with luksmount: %q", tc.args, stderr)
		}
	}
}

// mountOptionsApp is the real app with mount's action replaced by one that keeps the parsed
// options in *got.
func mountOptionsApp(got *supervisor.Options) *ucli.App {
	app := (&env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).app()
	capture := func(c *ucli.Context) error {
		o, err := mountOptions(c)
		*got = o
		return err
	}
	app.Action = capture
	app.Commands[0].Action = capture
	return app
}

// mountOptions through the real app: flags after the target work, lists split on commas.
func TestMountOptionsParsing(t *testing.T) {
	isolate(t)
	var got supervisor.Options
	app := mountOptionsApp(&got)
	args := []string{"luksmount", "mount", "./rel.img", "-o", "ro,noatime", "--nfs-options=rsize=65536", "--memory", "1300",
		"--key-file", "k", "--owner", "501:20", "--accel", "TCG", "/mnt/x"}
	if err := app.Run(reorder(app, args)); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got.Target != filepath.Join(wd, "rel.img") || got.Mountpoint != "/mnt/x" ||
		fmt.Sprint(got.MountOptions) != "[ro noatime]" || fmt.Sprint(got.NFSOptions) != "[rsize=65536]" ||
		got.MemoryMiB != 1300 || got.KeyFile != filepath.Join(wd, "k") || got.Owner != "501:20" || got.Accel != "tcg" ||
		!got.ReadOnly() {
		t.Fatalf("options %+v", got)
	}
	// The default command: no "mount" word, flags after the target.
	got = supervisor.Options{}
	if err := app.Run(reorder(app, []string{"luksmount", "disk4s1", "--no-mount"})); err != nil {
		t.Fatal(err)
	}
	if got.Target != "disk4s1" || !got.NoMount {
		t.Fatalf("options %+v", got)
	}
}

func TestReorder(t *testing.T) {
	app := (&env{}).app()
	for _, tc := range []struct{ in, want string }{
		{"luksmount t.img --no-mount", "luksmount --no-mount -- t.img"},
		{"luksmount t.img -o ro /mnt", "luksmount -o ro -- t.img /mnt"},
		{"luksmount stop t.img --force", "luksmount stop --force -- t.img"},
		{"luksmount log -f", "luksmount log -f"},
		{"luksmount format --size 256M x.img --pbkdf-memory 32768", "luksmount format --size 256M --pbkdf-memory 32768 -- x.img"},
		{"luksmount --memory 512 t.img", "luksmount --memory 512 -- t.img"},
		{"luksmount t.img -- -weird", "luksmount -- t.img -weird"},
	} {
		if got := strings.Join(reorder(app, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("reorder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"256M": 256 << 20, "8G": 8 << 30, "1GiB": 1 << 30, "33554432": 32 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&supervisor.PassphraseError{Target: "/x", Attempts: 3}, ExitWrongPassphrase},
		{fmt.Errorf("%w for /x", supervisor.ErrNoPassphrase), ExitWrongPassphrase},
		{&supervisor.MemoryError{Target: "/x", KDFMiB: 1024, VMMiB: 512, Err: control.ErrOutOfMemory}, ExitMemory},
		{&supervisor.LowMemoryError{VMMiB: 192, Detail: "write error"}, ExitMemory},
		{&blockdev.BusyError{Path: "/x"}, ExitBusy},
		{fmt.Errorf("x: %w", session.ErrBusy), ExitBusy},
		{fmt.Errorf("open: %w", os.ErrNotExist), ExitNotFound},
		{fmt.Errorf("open: %w", os.ErrPermission), ExitPermission},
		{fmt.Errorf("%w for y", session.ErrNoSession), ExitNotFound},
		{fmt.Errorf("/x: %w", luksheader.ErrCorrupt), ExitFilesystem},
		{fmt.Errorf("/x: %w", &luksheader.UnsupportedError{What: "the hash gost"}), ExitFilesystem},
		{control.Errorf(control.CodeUnsupportedCrypto, "this drive uses serpent"), ExitFilesystem},
		{control.Errorf(control.CodeNeedsRepair, "needs fsck"), ExitFilesystem},
		{fmt.Errorf("%w: qemu failed", supervisor.ErrBoot), ExitVM},
		{fmt.Errorf("%w: gone", supervisor.ErrVMDied), ExitVM},
		{fmt.Errorf("%w: mount_nfs", supervisor.ErrHostMount), ExitMount},
		{fmt.Errorf("x: %w", supervisor.ErrHasData), ExitHasData},
		{fmt.Errorf("x: %w", supervisor.ErrMountBusy), ExitStopRefused},
		{usagef("bad"), ExitUsage},
		{&silentError{ExitWrongPassphrase}, ExitWrongPassphrase}, // the detached supervisor's verdict
		{errors.New("something else"), ExitFailure},
	} {
		if got := ExitCode(tc.err); got != tc.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
	msg := Message(&supervisor.PassphraseError{Target: "/path", Attempts: 3})
	if msg != "luksmount: wrong passphrase for /path (3 attempts); nothing was changed" {
		t.Errorf("message %q", msg)
	}
	msg = Message(fmt.Errorf("boot VM: %w", &supervisor.LowMemoryError{VMMiB: 192, Detail: "write error"}))
	if msg != `luksmount: boot VM: the VM has too little memory to unpack the guest image (192 MiB; the kernel says "write error"); retry with --memory 320` {
		t.Errorf("message %q", msg)
	}
	msg = Message(&supervisor.MemoryError{Target: "/x", KDFMiB: 1024, VMMiB: 512, Err: control.ErrOutOfMemory})
	if !strings.Contains(msg, "the key slot needs 1024 MiB for its key derivation; retry with --memory 1280") {
		t.Errorf("message %q", msg)
	}
}

func TestStatusEmptyAndJSON(t *testing.T) {
	isolate(t)
	code, out, _ := run(t, "", "status", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("status --json with no sessions: %d %q", code, out)
	}
	code, out, _ = run(t, "", "status")
	if code != 0 || !strings.Contains(out, "no luksmount sessions") {
		t.Fatalf("status: %d %q", code, out)
	}
	// A live session (we hold its lock) is listed with the documented keys.
	reg := session.Default()
	s, err := reg.Create(session.State{Target: "/tmp/t.img", Label: "backup", FSType: "ext4", State: session.StateServing,
		NFSAddress: "127.0.0.1:40123", Export: "/", VMPid: 42, SupervisorPid: os.Getpid(), MemoryMiB: 256, CPUs: 1,
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, out, _ = run(t, "", "status", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("status --json: %d %q", code, out)
	}
	if list[0]["nfs_address"] != "127.0.0.1:40123" || list[0]["state"] != "serving" || list[0]["started"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("entry %v", list[0])
	}
	code, out, _ = run(t, "", "status")
	if code != 0 || !strings.Contains(out, "/tmp/t.img") || !strings.Contains(out, "127.0.0.1:40123:/") {
		t.Fatalf("status table: %q", out)
	}
}

func TestStopAndLogWithoutSessions(t *testing.T) {
	isolate(t)
	code, _, stderr := run(t, "", "stop")
	if code != ExitNotFound || !strings.Contains(stderr, "no running luksmount session") {
		t.Fatalf("stop: %d %q", code, stderr)
	}
	code, _, stderr = run(t, "", "stop", "/tmp/nothing.img")
	if code != ExitNotFound {
		t.Fatalf("stop target: %d %q", code, stderr)
	}
	code, _, stderr = run(t, "", "log")
	if code != ExitNotFound || !strings.Contains(stderr, "no luksmount logs yet") {
		t.Fatalf("log: %d %q", code, stderr)
	}
}

func TestLogPrintsLastSession(t *testing.T) {
	isolate(t)
	img := filepath.Join(t.TempDir(), "t.img")
	os.WriteFile(img, nil, 0o600)
	p := session.LogPath(session.ID(img))
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("=== first\nold line\n=== second\nnew line\n"), 0o600)
	code, out, _ := run(t, "", "log", img)
	if code != 0 || out != "=== second\nnew line\n" {
		t.Fatalf("log: %d %q", code, out)
	}
	code, out, _ = run(t, "", "log", "--all", img)
	if code != 0 || !strings.Contains(out, "old line") {
		t.Fatalf("log --all: %d %q", code, out)
	}
	code, out, _ = run(t, "", "log") // the newest log
	if code != 0 || out != "=== second\nnew line\n" {
		t.Fatalf("log (newest): %d %q", code, out)
	}
}

func TestFormatRefusesData(t *testing.T) {
	isolate(t)
	img := filepath.Join(t.TempDir(), "data.img")
	data := make([]byte, 40<<20)
	data[700000] = 1
	os.WriteFile(img, data, 0o600)
	code, _, stderr := run(t, "pw\n", "format", img)
	if code != ExitHasData || !strings.Contains(stderr, "non-zero byte at offset 700000") || !strings.Contains(stderr, "--force") {
		t.Fatalf("format: %d %q", code, stderr)
	}
	after, _ := os.ReadFile(img)
	if !bytes.Equal(after, data) {
		t.Fatal("refused format changed the target")
	}
	// An existing image of another size is not resized without --force.
	code, _, _ = run(t, "pw\n", "format", "--size", "64M", img)
	if code != ExitHasData {
		t.Fatalf("format --size over existing: %d", code)
	}
}

func TestFormatNoPassphrase(t *testing.T) {
	isolate(t)
	img := filepath.Join(t.TempDir(), "new.img")
	code, _, stderr := run(t, "", "format", "--size", "64M", img)
	if code != ExitWrongPassphrase || !strings.Contains(stderr, "no passphrase given") {
		t.Fatalf("format with empty stdin: %d %q", code, stderr)
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Fatal("image created although no passphrase was given")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "luksmount ") || !strings.Contains(out, "control protocol") {
		t.Fatalf("version: %d %q", code, out)
	}
}
