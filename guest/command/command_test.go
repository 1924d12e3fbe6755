package command

import (
	"context"
	"os/exec"
	"strings"
	"testing"
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
