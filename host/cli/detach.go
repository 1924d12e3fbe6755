package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/pkg/control"
)

// The handoff: the CLI starts `luksmount __supervise` in a new session (setsid) with one end of a
// socketpair as fd 3. Over it, in control frames with JSON bodies, the CLI sends the options; the
// supervisor streams progress, asks for passphrases (which travel as frame secrets, never in argv,
// the environment or a file) and finally says ready or failed. The CLI then exits; the supervisor
// keeps the VM.
type handoffMsg struct {
	T       string              `json:"t"` // start, progress, ask, passphrase, no-passphrase, ready, failed
	Options *supervisor.Options `json:"options,omitempty"`
	Line    string              `json:"line,omitempty"`
	Prompt  string              `json:"prompt,omitempty"`
	Attempt int                 `json:"attempt,omitempty"`
	Max     int                 `json:"max,omitempty"`
	Result  *supervisor.Result  `json:"result,omitempty"`
	Code    int                 `json:"code,omitempty"`
	Message string              `json:"message,omitempty"`
}

func sendMsg(w io.Writer, m handoffMsg, secret []byte) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return control.WriteFrame(w, control.KindEvent, 0, body, secret)
}

// recvMsg reads one message; the caller wipes f (it may hold a passphrase).
func recvMsg(r io.Reader) (handoffMsg, *control.Frame, error) {
	var m handoffMsg
	f, err := control.ReadFrame(r)
	if err != nil {
		return m, nil, err
	}
	if err := json.Unmarshal(f.Body, &m); err != nil {
		f.Wipe()
		return m, nil, fmt.Errorf("bad handoff message: %w", err)
	}
	return m, f, nil
}

const superviseCmd = "__supervise"

// mountDetached starts the supervisor and serves its questions until it is ready or failed.
func (e *env) mountDetached(ctx context.Context, o supervisor.Options) error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("cannot create the supervisor channel: %w", err)
	}
	parentF := os.NewFile(uintptr(fds[0]), "handoff")
	childF := os.NewFile(uintptr(fds[1]), "handoff-child")
	defer parentF.Close()
	exe, err := os.Executable()
	if err != nil {
		childF.Close()
		return fmt.Errorf("cannot find the luksmount executable: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		childF.Close()
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(exe, superviseCmd)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{childF}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		childF.Close()
		return fmt.Errorf("cannot start the supervisor: %w", err)
	}
	childF.Close()
	go cmd.Wait() // reaped if it exits while we wait; normally it outlives us

	conn := parentF
	if err := sendMsg(conn, handoffMsg{T: "start", Options: &o}, nil); err != nil {
		return fmt.Errorf("cannot talk to the supervisor: %w", err)
	}
	// Ctrl-C while waiting: closing our end tells the supervisor to give up and clean up.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			conn.Close()
		case <-ctx.Done():
			conn.Close()
		}
	}()
	ui := &termUI{e: e, pr: passphrase.New(e.stdin, e.stderr)}
	for {
		m, f, err := recvMsg(conn)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &exitError{ExitVM, "luksmount: the supervisor exited before the drive was ready; see `luksmount log " + o.Target + "`"}
		}
		f.Wipe()
		switch m.T {
		case "progress":
			ui.Progress(m.Line)
		case "ask":
			p, perr := ui.Passphrase(ctx, m.Prompt, m.Attempt, m.Max)
			if perr != nil {
				msg := "eof"
				if !errors.Is(perr, passphrase.ErrNoInput) {
					msg = perr.Error()
				}
				sendMsg(conn, handoffMsg{T: "no-passphrase", Message: msg}, nil)
				continue
			}
			err := sendMsg(conn, handoffMsg{T: "passphrase"}, p)
			passphrase.Wipe(p)
			if err != nil {
				return fmt.Errorf("cannot talk to the supervisor: %w", err)
			}
		case "ready":
			e.printReady(*m.Result, false)
			return nil
		case "failed":
			fmt.Fprintln(e.stderr, m.Message)
			return &silentError{m.Code}
		}
	}
}

// superviseCommand is the detached supervisor's entry point.
func (e *env) superviseCommand() *ucli.Command {
	return &ucli.Command{
		Name:   superviseCmd,
		Hidden: true,
		Action: func(c *ucli.Context) error {
			conn := os.NewFile(3, "handoff")
			if conn == nil {
				return usagef("%s is internal to luksmount", superviseCmd)
			}
			return supervise(c.Context, conn)
		},
	}
}

// handoffUI is the supervisor's UI while the CLI waits: everything goes over the channel.
type handoffUI struct {
	mu      sync.Mutex
	conn    io.Writer
	answers chan answer
}

type answer struct {
	secret []byte
	err    error
}

func (u *handoffUI) Progress(line string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	sendMsg(u.conn, handoffMsg{T: "progress", Line: line}, nil)
}

func (u *handoffUI) Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error) {
	u.mu.Lock()
	err := sendMsg(u.conn, handoffMsg{T: "ask", Prompt: prompt, Attempt: attempt, Max: max}, nil)
	u.mu.Unlock()
	if err != nil {
		return nil, passphrase.ErrNoInput
	}
	select {
	case a := <-u.answers:
		return a.secret, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func supervise(ctx context.Context, conn *os.File) error {
	defer conn.Close()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	m, f, err := recvMsg(conn)
	if err != nil || m.T != "start" || m.Options == nil {
		return fmt.Errorf("no start message from the CLI: %v", err)
	}
	f.Wipe()
	o := *m.Options

	// Until ready, the CLI going away (Ctrl-C, killed) cancels the session.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ui := &handoffUI{conn: conn, answers: make(chan answer)}
	var readyMu sync.Mutex
	isReady := false
	go func() {
		for {
			m, f, err := recvMsg(conn)
			if err != nil {
				readyMu.Lock()
				r := isReady
				readyMu.Unlock()
				if !r {
					cancel()
				}
				return
			}
			var a answer
			switch m.T {
			case "passphrase":
				a.secret = append(make([]byte, 0, len(f.Secret)), f.Secret...)
			case "no-passphrase":
				a.err = passphrase.ErrNoInput
				if m.Message != "eof" {
					a.err = errors.New(m.Message)
				}
			default:
				f.Wipe()
				continue
			}
			f.Wipe()
			select {
			case ui.answers <- a:
			case <-runCtx.Done():
				passphrase.Wipe(a.secret)
			}
		}
	}()

	deps := supervisor.Default(o)
	err = supervisor.Run(runCtx, o, deps, ui, func(r supervisor.Result) {
		readyMu.Lock()
		isReady = true
		readyMu.Unlock()
		ui.mu.Lock()
		sendMsg(conn, handoffMsg{T: "ready", Result: &r}, nil)
		ui.mu.Unlock()
	})
	readyMu.Lock()
	r := isReady
	readyMu.Unlock()
	if err != nil && !r {
		ui.mu.Lock()
		sendMsg(conn, handoffMsg{T: "failed", Code: ExitCode(err), Message: Message(err)}, nil)
		ui.mu.Unlock()
	}
	if err != nil {
		return &silentError{ExitCode(err)} // nobody reads our stderr; the log has it
	}
	return nil
}
