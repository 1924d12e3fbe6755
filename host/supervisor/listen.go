package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/pkg/control"
)

// The session socket speaks one JSON request line and one JSON reply line per connection.
type socketRequest struct {
	Op    string `json:"op"` // "status", "stop", "trim" or "resize"
	Force bool   `json:"force,omitempty"`
	Size  int64  `json:"size,omitempty"` // resize: the new size in bytes
}

type socketReply struct {
	State *session.State       `json:"state,omitempty"`
	Agent *control.StatusReply `json:"agent,omitempty"`
	Error string               `json:"error,omitempty"`
	Busy  bool                 `json:"busy,omitempty"` // the stop was refused: mount point busy
	Done  string               `json:"done,omitempty"` // trim, resize: what was done, for the user
	// Class and Code keep the error's kind across the socket, so the CLI's exit code is the
	// one the supervisor's error maps to (see errorClasses).
	Class string       `json:"class,omitempty"`
	Code  control.Code `json:"code,omitempty"`
}

// stopRequest reaches wait from a stop connection. answer writes the reply to that connection and
// returns once it is written: wait calls it before the session ends, so the reply is never lost
// to the supervisor exiting first.
type stopRequest struct {
	force  bool
	answer func(error)
}

// replyTimeout bounds writing a reply to a CLI that does not read it.
const replyTimeout = 5 * time.Second

// listen serves stop and status requests on the session's socket until ctx ends.
func (s *sup) listen(ctx context.Context) error {
	path := s.sess.SocketPath()
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if uid := s.opts.chownUID(); uid >= 0 {
		os.Chown(path, uid, s.opts.GID)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serveSocket(ctx, c)
		}
	}()
	return nil
}

func (s *sup) serveSocket(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	var req socketRequest
	var rep socketReply
	if err := json.Unmarshal(line, &req); err != nil {
		rep.Error = "malformed request"
	}
	switch req.Op {
	case "status":
		st := s.state()
		rep.State = &st
		if m := s.machine(); m != nil {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if a, err := m.Control().Status(sctx); err == nil {
				rep.Agent = a
			}
			cancel()
		}
	case "stop":
		answered := make(chan struct{})
		r := stopRequest{force: req.Force, answer: func(err error) {
			defer close(answered)
			rep.setError(err)
			writeReply(c, rep)
		}}
		select {
		case s.stopReq <- r:
			<-answered
			return
		case <-ctx.Done():
			// Another stop (or the unmount) is ending the session: hang up without an answer;
			// the CLI then watches the session end and reports that (see RequestStop).
			return
		}
	case "trim", "resize":
		rep.Done, err = s.stackOp(ctx, req)
		rep.setError(err)
	default:
		rep.Error = fmt.Sprintf("unknown request %q", req.Op)
	}
	writeReply(c, rep)
}

func writeReply(c net.Conn, rep socketReply) {
	data, _ := json.Marshal(rep)
	c.SetWriteDeadline(time.Now().Add(replyTimeout))
	c.Write(append(data, '\n'))
}

// errorClasses are the supervisor errors whose kind the CLI's exit codes branch on.
var errorClasses = map[string]error{
	"boot":       ErrBoot,
	"vm-died":    ErrVMDied,
	"host-mount": ErrHostMount,
	"mount-busy": ErrMountBusy,
	"unclean":    ErrUncleanShutdown,
}

func (rep *socketReply) setError(err error) {
	if err == nil {
		return
	}
	rep.Error, rep.Busy = err.Error(), errors.Is(err, ErrMountBusy)
	for name, class := range errorClasses {
		if errors.Is(err, class) {
			rep.Class = name
			break
		}
	}
	var ce *control.Error
	if errors.As(err, &ce) {
		rep.Code = ce.Code
	}
}

// err rebuilds the supervisor's error on the CLI side, with its class.
func (rep *socketReply) err() error {
	if rep.Error == "" {
		return nil
	}
	e := &ReplyError{Message: rep.Error, class: errorClasses[rep.Class]}
	if rep.Busy && e.class == nil {
		e.class = ErrMountBusy
	}
	if rep.Code != "" {
		e.code = &control.Error{Code: rep.Code}
	}
	return e
}

// ReplyError is an error the session's supervisor sent back. It matches the supervisor's error
// class (ErrMountBusy, ErrVMDied, ...) and control error code, so exit codes survive the socket.
type ReplyError struct {
	Message string
	class   error
	code    *control.Error
}

func (e *ReplyError) Error() string { return e.Message }

func (e *ReplyError) Is(target error) bool {
	return (e.class != nil && target == e.class) || (e.code != nil && e.code.Is(target))
}

// ErrNoAnswer means the request reached the supervisor but no reply came back (the connection
// dropped): whether it was carried out must be found out another way.
var ErrNoAnswer = errors.New("no answer from the session's supervisor")

func ask(socket string, req socketRequest, timeout time.Duration) (*socketReply, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the session's supervisor: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	data, _ := json.Marshal(req)
	if _, err := c.Write(append(data, '\n')); err != nil {
		return nil, fmt.Errorf("cannot reach the session's supervisor: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	var rep socketReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, fmt.Errorf("bad answer from the session's supervisor: %w", err)
	}
	return &rep, nil
}

// RequestStop asks a running supervisor to unmount and shut down; it returns when it has (or
// refused: an error matching ErrMountBusy). An error matching ErrNoAnswer means the request was
// sent but the connection dropped before the reply: the caller must check whether the session ended.
func RequestStop(socket string, force bool) error {
	rep, err := ask(socket, socketRequest{Op: "stop", Force: force}, shutdownTimeout+exitTimeout+flushTimeout+30*time.Second)
	if err != nil {
		return err
	}
	return rep.err()
}

// LiveStatus asks a running supervisor for its state and the agent's.
func LiveStatus(socket string) (*session.State, *control.StatusReply, error) {
	rep, err := ask(socket, socketRequest{Op: "status"}, 8*time.Second)
	if err != nil {
		return nil, nil, err
	}
	if err := rep.err(); err != nil {
		return nil, nil, err
	}
	return rep.State, rep.Agent, nil
}
