package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/pkg/control"
)

// The hand-off between the CLI and the detached supervisor. The CLI starts the supervisor in a new
// session (setsid) with one end of a socketpair; over it, in control frames with JSON bodies, the
// CLI sends the options, the supervisor streams progress, asks for passphrases (which travel as
// frame secrets, never in argv, the environment or a file) and finally says ready or failed. The
// CLI then exits; the supervisor keeps the VM.

// MsgKind is what a hand-off message is.
type MsgKind string

const (
	MsgStart        MsgKind = "start"         // CLI -> supervisor: the options
	MsgProgress     MsgKind = "progress"      // supervisor -> CLI: one line
	MsgAsk          MsgKind = "ask"           // supervisor -> CLI: a passphrase, please
	MsgPassphrase   MsgKind = "passphrase"    // CLI -> supervisor: the answer, as the frame's secret
	MsgNoPassphrase MsgKind = "no-passphrase" // CLI -> supervisor: none (end of input, or why not)
	MsgReady        MsgKind = "ready"         // supervisor -> CLI: up; the CLI may go
	MsgFailed       MsgKind = "failed"        // supervisor -> CLI: the exit code and line to print
)

// noInput is MsgNoPassphrase's Message for "end of input" (passphrase.ErrNoInput).
const noInput = "eof"

type handoffMsg struct {
	Kind    MsgKind  `json:"t"`
	Options *Options `json:"options,omitempty"`
	Line    string   `json:"line,omitempty"`
	Prompt  string   `json:"prompt,omitempty"`
	Attempt int      `json:"attempt,omitempty"`
	Max     int      `json:"max,omitempty"`
	Result  *Result  `json:"result,omitempty"`
	Code    int      `json:"code,omitempty"`
	Message string   `json:"message,omitempty"`
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

// ErrSupervisorGone means the supervisor went away before saying ready or failed.
var ErrSupervisorGone = errors.New("the supervisor exited before the drive was ready")

// FailedError is the supervisor's failure as the CLI receives it: the exit code and the line the
// supervisor chose for it.
type FailedError struct {
	Code    int
	Message string
}

func (e *FailedError) Error() string { return e.Message }

// WaitReady is the CLI's end of the hand-off on conn: it sends o, answers the supervisor's
// progress and questions through ui, and returns the result once the supervisor is ready. A
// failure comes back as a *FailedError. ctx ending closes conn, which makes a supervisor that is
// not ready yet give up and clean up.
func WaitReady(ctx context.Context, conn io.ReadWriteCloser, o Options, ui UI) (*Result, error) {
	if err := sendMsg(conn, handoffMsg{Kind: MsgStart, Options: &o}, nil); err != nil {
		return nil, fmt.Errorf("cannot talk to the supervisor: %w", err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	for {
		m, f, err := recvMsg(conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, ErrSupervisorGone
		}
		f.Wipe()
		switch m.Kind {
		case MsgProgress:
			ui.Progress(m.Line)
		case MsgAsk:
			p, perr := ui.Passphrase(ctx, m.Prompt, m.Attempt, m.Max)
			if ctx.Err() != nil {
				passphrase.Wipe(p)
				return nil, ctx.Err() // closing conn tells the supervisor
			}
			if perr != nil {
				msg := noInput
				if !errors.Is(perr, passphrase.ErrNoInput) {
					msg = perr.Error()
				}
				if err := sendMsg(conn, handoffMsg{Kind: MsgNoPassphrase, Message: msg}, nil); err != nil {
					return nil, talkError(ctx, err)
				}
				continue
			}
			err := sendMsg(conn, handoffMsg{Kind: MsgPassphrase}, p)
			passphrase.Wipe(p)
			if err != nil {
				return nil, talkError(ctx, err)
			}
		case MsgReady:
			if m.Result == nil {
				return nil, fmt.Errorf("the supervisor said ready without a result")
			}
			return m.Result, nil
		case MsgFailed:
			return nil, &FailedError{Code: m.Code, Message: m.Message}
		}
	}
}

// talkError is a failed send to the supervisor: ctx's end if that closed the channel.
func talkError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("cannot talk to the supervisor: %w", err)
}

// RunFunc runs a session (Run with the real collaborators, in the supervisor).
type RunFunc func(ctx context.Context, o Options, ui UI, ready func(Result)) error

// Describe maps a session's error to the exit code and the one line the CLI prints for it.
type Describe func(error) (code int, message string)

// Supervise is the detached supervisor's end of the hand-off on conn: it reads the options, runs
// the session with its UI over conn, and says ready or failed. The CLI going away before ready
// cancels the session; after ready it does not (the session runs until stopped). It returns the
// session's error.
func Supervise(ctx context.Context, conn io.ReadWriteCloser, run RunFunc, describe Describe) error {
	defer conn.Close()
	m, f, err := recvMsg(conn)
	if err != nil {
		return fmt.Errorf("no start message from the CLI: %w", err)
	}
	f.Wipe()
	if m.Kind != MsgStart || m.Options == nil {
		return fmt.Errorf("no start message from the CLI: got a %q message", m.Kind)
	}
	o := *m.Options

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &handoffUI{conn: conn, answers: make(chan answer)}
	go h.readAnswers(runCtx, cancel)
	err = run(runCtx, o, h, func(r Result) {
		h.mu.Lock()
		h.ready = true
		sendMsg(h.conn, handoffMsg{Kind: MsgReady, Result: &r}, nil)
		h.mu.Unlock()
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil && !h.ready {
		code, msg := describe(err)
		sendMsg(h.conn, handoffMsg{Kind: MsgFailed, Code: code, Message: msg}, nil)
	}
	return err
}

// handoffUI is the supervisor's UI while the CLI waits: everything goes over the channel.
type handoffUI struct {
	mu      sync.Mutex // one writer at a time; guards ready
	conn    io.ReadWriter
	ready   bool
	answers chan answer
}

type answer struct {
	secret []byte
	err    error
}

func (u *handoffUI) Progress(line string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	sendMsg(u.conn, handoffMsg{Kind: MsgProgress, Line: line}, nil)
}

func (u *handoffUI) Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error) {
	u.mu.Lock()
	err := sendMsg(u.conn, handoffMsg{Kind: MsgAsk, Prompt: prompt, Attempt: attempt, Max: max}, nil)
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

// readAnswers hands the CLI's answers to Passphrase until the CLI goes away; before ready that
// cancels the session.
func (u *handoffUI) readAnswers(ctx context.Context, cancel func()) {
	for {
		m, f, err := recvMsg(u.conn)
		if err != nil {
			u.mu.Lock()
			ready := u.ready
			u.mu.Unlock()
			if !ready {
				cancel()
			}
			return
		}
		var a answer
		switch m.Kind {
		case MsgPassphrase:
			a.secret = append(make([]byte, 0, len(f.Secret)), f.Secret...)
		case MsgNoPassphrase:
			a.err = passphrase.ErrNoInput
			if m.Message != noInput {
				a.err = errors.New(m.Message)
			}
		default:
			f.Wipe()
			continue
		}
		f.Wipe()
		select {
		case u.answers <- a:
		case <-ctx.Done():
			passphrase.Wipe(a.secret)
		}
	}
}
