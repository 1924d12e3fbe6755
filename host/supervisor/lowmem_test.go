package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/pkg/control"
)

// console-128mib.log is a real console: the amd64 agent image booted with -m 128 under TCG.
func TestConsoleUnpackError(t *testing.T) {
	fixture := filepath.Join("testdata", "console-128mib.log")
	err := consoleUnpackError(fixture, 128)
	var lm *LowMemoryError
	if !errors.As(err, &lm) || lm.VMMiB != 128 || lm.Detail != "write error" || !errors.Is(err, control.ErrOutOfMemory) {
		t.Fatalf("err = %#v", err)
	}
	want := `the VM has too little memory to unpack the guest image (128 MiB; the kernel says "write error"); retry with --memory 256`
	if err.Error() != want {
		t.Fatalf("message\n %s\nwant\n %s", err, want)
	}
	if r := (&LowMemoryError{VMMiB: 200}).Retry(); r != 384 {
		t.Fatalf("Retry(200) = %d, want 384", r)
	}
	// The same boot without the kernel's line, no console, and no console file: no error.
	b, _ := os.ReadFile(fixture)
	clean := filepath.Join(t.TempDir(), "clean.log")
	os.WriteFile(clean, []byte(strings.ReplaceAll(string(b), "Initramfs unpacking failed: write error", "")), 0o600)
	for _, p := range []string{clean, "", filepath.Join(t.TempDir(), "none.log")} {
		if err := consoleUnpackError(p, 128); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
	}
}

// bootsTooSmall makes e's VM boot print the kernel's unpack failure on its console, as a VM with
// too little memory does; the agent still answers Hello.
func bootsTooSmall(t *testing.T, e *env, m Machine) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "console-128mib.log"))
	if err != nil {
		t.Fatal(err)
	}
	e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) {
		if spec.ConsoleLog == "" {
			t.Error("the VM has no console file to read")
		} else if err := os.WriteFile(spec.ConsoleLog, fixture, 0o600); err != nil {
			t.Error(err)
		}
		return m, nil
	}
}

func wantLowMemory(t *testing.T, what string, err error, shutdowns []control.ShutdownRequest) {
	t.Helper()
	var lm *LowMemoryError
	if !errors.As(err, &lm) || !errors.Is(err, control.ErrOutOfMemory) || !strings.Contains(err.Error(), "retry with --memory") {
		t.Fatalf("%s: err = %v; want the too-little-memory error", what, err)
	}
	if len(shutdowns) != 1 {
		t.Fatalf("%s: shutdowns %+v; want the VM powered off once", what, shutdowns)
	}
}

// Every command that boots a VM stops at Hello with the memory message, before the unlock or
// mount that would fail on a missing tool (cryptsetup without libpopt).
func TestUnpackFailureIsTooLittleMemory(t *testing.T) {
	t.Run("mount", func(t *testing.T) {
		e := newEnv(t, "luks2-argon2id.bin", "right")
		bootsTooSmall(t, e, e.vm)
		ui := &scriptUI{answers: []string{"right"}}
		res, done := e.start(t, ui)
		if res != nil {
			t.Fatal("ready with a partly unpacked image")
		}
		err := <-done
		e.vm.mu.Lock()
		defer e.vm.mu.Unlock()
		wantLowMemory(t, "mount", err, e.vm.shutdowns)
		if len(e.vm.secrets) != 0 {
			t.Fatalf("unlock tried: %d", len(e.vm.secrets))
		}
		e.noSessions(t)
		all, _ := filepath.Glob(filepath.Join(e.logs, "*.log"))
		var logs []string
		for _, l := range all {
			if !strings.HasSuffix(l, ".console.log") {
				logs = append(logs, l)
			}
		}
		if len(logs) != 1 {
			t.Fatalf("session logs %v", all)
		}
		if log, _ := os.ReadFile(logs[0]); !strings.Contains(string(log), "too little memory to unpack the guest image") {
			t.Fatalf("log lacks the reason:\n%s", log)
		}
	})
	t.Run("check", func(t *testing.T) {
		e := newEnv(t, "luks2-argon2id.bin", "right")
		f, checks, _ := checkVM(e)
		bootsTooSmall(t, e, f)
		ui := &checkUIFake{scriptUI: scriptUI{answers: []string{"right"}}}
		_, err := Check(context.Background(), CheckOptions{Target: e.opts.Target, UID: -1, GID: -1}, e.deps, ui)
		f.mu.Lock()
		defer f.mu.Unlock()
		wantLowMemory(t, "check", err, f.shutdowns)
		if len(*checks) != 0 {
			t.Fatalf("check ran: %+v", *checks)
		}
	})
	t.Run("format", func(t *testing.T) {
		e := newEnv(t, "ext4.bin", "")
		bootsTooSmall(t, e, e.vm)
		_, err := Format(context.Background(), FormatOptions{Target: e.opts.Target, Type: "luks2", Force: true}, e.deps, []byte("pw"), func(string) {})
		e.vm.mu.Lock()
		defer e.vm.mu.Unlock()
		wantLowMemory(t, "format", err, e.vm.shutdowns)
	})
}
