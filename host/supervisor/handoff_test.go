package supervisor

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/session"
)

// socketpair is the CLI's and the supervisor's ends of the hand-off, as mountDetached makes them.
func socketpair(t *testing.T) (cli, sup *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	cli, sup = os.NewFile(uintptr(fds[0]), "cli"), os.NewFile(uintptr(fds[1]), "supervisor")
	t.Cleanup(func() { cli.Close(); sup.Close() })
	return cli, sup
}

// describeForTest stands in for the CLI's exit code table.
func describeForTest(err error) (int, string) {
	if errors.Is(err, ErrNoPassphrase) {
		return 3, "luksmount: " + err.Error()
	}
	return 1, "luksmount: " + err.Error()
}

// supervise runs the supervisor's end of the hand-off on conn with the fake VM.
func (e *env) supervise(conn *os.File) chan error {
	done := make(chan error, 1)
	go func() {
		done <- Supervise(context.Background(), conn, func(ctx context.Context, o Options, ui UI, ready func(Result)) error {
			return Run(ctx, o, e.deps, ui, ready)
		}, describeForTest)
	}()
	return done
}

func TestHandoffPassphraseCrossesOnceAndIsWiped(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	cliEnd, supEnd := socketpair(t)
	done := e.supervise(supEnd)
	ui := &scriptUI{answers: []string{"right"}}
	res, err := WaitReady(context.Background(), cliEnd, e.opts, ui)
	if err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if res.State.State != session.StateServing || res.State.Target != e.opts.Target {
		t.Fatalf("result %+v", res.State)
	}
	if len(ui.asked) != 1 || strings.Join(e.vm.secrets, ",") != "right" {
		t.Fatalf("asked %v, the agent got %q: want one passphrase, once", ui.asked, e.vm.secrets)
	}
	ui.allWiped(t) // the CLI's buffer, once sent
	if len(ui.lines) == 0 || !strings.Contains(strings.Join(ui.lines, "\n"), "booting VM") {
		t.Fatalf("progress did not reach the CLI: %q", ui.lines)
	}
	if err := RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Supervise: %v", err)
	}
	e.noSessions(t)
}

func TestHandoffNoPassphraseHasItsExitCode(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	cliEnd, supEnd := socketpair(t)
	done := e.supervise(supEnd)
	_, err := WaitReady(context.Background(), cliEnd, e.opts, &scriptUI{}) // end of input at once
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Code != 3 || !strings.Contains(fe.Message, "no passphrase given") {
		t.Fatalf("WaitReady: %v (%+v); want a failure with exit code 3", err, fe)
	}
	if serr := <-done; !errors.Is(serr, ErrNoPassphrase) {
		t.Fatalf("Supervise: %v", serr)
	}
	<-e.vm.Done()
	e.noSessions(t)
}

// blockingUI never answers: the user walked away, then pressed Ctrl-C.
type blockingUI struct {
	scriptUI
	asked chan struct{}
}

func (u *blockingUI) Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error) {
	close(u.asked)
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestHandoffCLIGoneBeforeReadyCancels(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	cliEnd, supEnd := socketpair(t)
	done := e.supervise(supEnd)
	ctx, cancel := context.WithCancel(context.Background())
	ui := &blockingUI{asked: make(chan struct{})}
	go func() { <-ui.asked; cancel() }() // Ctrl-C at the prompt
	if _, err := WaitReady(ctx, cliEnd, e.opts, ui); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReady: %v", err)
	}
	select {
	case serr := <-done:
		if !errors.Is(serr, context.Canceled) {
			t.Fatalf("Supervise: %v; want the session cancelled", serr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor kept waiting after the CLI went away before ready")
	}
	<-e.vm.Done() // the VM booted meanwhile is not left behind
	e.noSessions(t)
}

func TestHandoffCLIGoneAfterReadyKeepsSession(t *testing.T) {
	e := newEnv(t, "ext4.bin", "")
	cliEnd, supEnd := socketpair(t)
	done := e.supervise(supEnd)
	res, err := WaitReady(context.Background(), cliEnd, e.opts, &scriptUI{})
	if err != nil {
		t.Fatal(err)
	}
	cliEnd.Close() // the CLI exits, as it does after ready
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the session ended when the CLI exited after ready: %v", err)
	default:
	}
	if _, err := e.reg.Find(e.opts.Target); err != nil || len(e.vm.shutdowns) != 0 {
		t.Fatalf("session gone (%v) or VM shut down (%v)", err, e.vm.shutdowns)
	}
	if err := RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A message other than start first is refused with what it was (not "<nil>").
func TestHandoffWantsStartFirst(t *testing.T) {
	cliEnd, supEnd := socketpair(t)
	go sendMsg(cliEnd, handoffMsg{Kind: MsgProgress, Line: "hi"}, nil)
	err := Supervise(context.Background(), supEnd, func(context.Context, Options, UI, func(Result)) error {
		t.Error("ran without options")
		return nil
	}, describeForTest)
	if err == nil || strings.Contains(err.Error(), "<nil>") || !strings.Contains(err.Error(), `"progress"`) {
		t.Fatalf("err = %v", err)
	}
}
