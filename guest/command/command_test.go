package command

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestExecFeedsStdinWithoutNewline(t *testing.T) {
	if _, err := exec.LookPath("od"); err != nil {
		t.Fatal("od is needed (coreutils)")
	}
	e := &Exec{}
	secret := []byte("pa ss")
	r, err := e.Run(context.Background(), Cmd{Name: "od", Args: []string{"-An", "-c"}, Stdin: secret})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v", r, err)
	}
	if got := strings.Join(strings.Fields(r.Stdout), ""); got != "pass" {
		t.Fatalf("tool read %q; want exactly the 5 secret bytes and no newline", r.Stdout)
	}
}

func TestExecReportsExitCodeAndEnv(t *testing.T) {
	e := &Exec{}
	r, err := e.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", `echo "$PATH $X" >&2; exit 3`}, Env: []string{"X=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 3 || strings.TrimSpace(r.Stderr) != Path+" 1" {
		t.Fatalf("Run = %+v; want exit 3 and stderr %q", r, Path+" 1")
	}
	if _, err := e.Run(context.Background(), Cmd{Name: "/nonexistent/tool"}); err == nil {
		t.Fatal("running a missing tool succeeded")
	}
}

func TestStringShowsArgsNeverStdin(t *testing.T) {
	c := Cmd{Name: "tool", Args: []string{"open", "--flag=x"}, Stdin: []byte("secret")}
	if got, want := c.String(), "tool open --flag=x"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// Started runs before stdin is written: the process is still waiting for it, so its /proc entry
// can be read (the argv checks of guest/cryptsetup's tests rely on this).
func TestExecStartedBeforeStdin(t *testing.T) {
	var cmdline []byte
	e := &Exec{Started: func(pid int) {
		// execve has begun when Start returns; its new argv shows a moment later.
		for end := time.Now().Add(5 * time.Second); len(cmdline) == 0 && time.Now().Before(end); time.Sleep(time.Millisecond) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				t.Errorf("reading the child's cmdline: %v", err)
				return
			}
			cmdline = b
		}
	}}
	r, err := e.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "read x; echo got $x", "sh-arg"}, Stdin: []byte("line\n")})
	if err != nil || strings.TrimSpace(r.Stdout) != "got line" {
		t.Fatalf("Run = %+v, %v", r, err)
	}
	if !strings.Contains(string(cmdline), "sh-arg") {
		t.Errorf("Started saw cmdline %q, want the child's own", cmdline)
	}
}
