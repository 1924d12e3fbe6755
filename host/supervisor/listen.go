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
	Op    string `json:"op"` // "status" or "stop"
	Force bool   `json:"force,omitempty"`
}

type socketReply struct {
	State *session.State       `json:"state,omitempty"`
	Agent *control.StatusReply `json:"agent,omitempty"`
	Error string               `json:"error,omitempty"`
	Busy  bool                 `json:"busy,omitempty"` // the stop was refused: mount point busy
}

type stopRequest struct {
	force bool
	reply chan error
}

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
		r := stopRequest{force: req.Force, reply: make(chan error, 1)}
		select {
		case s.stopReq <- r:
			if err := <-r.reply; err != nil {
				rep.Error, rep.Busy = err.Error(), errors.Is(err, ErrMountBusy)
			}
		case <-ctx.Done():
			rep.Error = "the session is already stopping"
		}
	default:
		rep.Error = fmt.Sprintf("unknown request %q", req.Op)
	}
	data, _ := json.Marshal(rep)
	c.Write(append(data, '\n'))
}

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
		return nil, fmt.Errorf("no answer from the session's supervisor: %w", err)
	}
	var rep socketReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, fmt.Errorf("bad answer from the session's supervisor: %w", err)
	}
	return &rep, nil
}

// RequestStop asks a running supervisor to unmount and shut down; it returns when it has (or
// refused: an error matching ErrMountBusy).
func RequestStop(socket string, force bool) error {
	rep, err := ask(socket, socketRequest{Op: "stop", Force: force}, shutdownTimeout+exitTimeout+30*time.Second)
	if err != nil {
		return err
	}
	if rep.Error != "" {
		if rep.Busy {
			return fmt.Errorf("%w: %s", ErrMountBusy, rep.Error)
		}
		return errors.New(rep.Error)
	}
	return nil
}

// LiveStatus asks a running supervisor for its state and the agent's.
func LiveStatus(socket string) (*session.State, *control.StatusReply, error) {
	rep, err := ask(socket, socketRequest{Op: "status"}, 8*time.Second)
	if err != nil {
		return nil, nil, err
	}
	if rep.Error != "" {
		return nil, nil, errors.New(rep.Error)
	}
	return rep.State, rep.Agent, nil
}
