package control

import (
	"context"
	"encoding/json"
	"errors"

	"io"
	"runtime/debug"
	"sync"
)

// Request is one call as the agent sees it. Secret is zeroed when the handler returns: copy
// nothing out of it that outlives the call.
type Request struct {
	Op     Op
	Secret []byte
	args   json.RawMessage
	after  []func()
}

// AfterReply makes fn run once the reply to this request has been written to the connection (or
// the connection failed). The agent powers off from here so the host always gets the reply first.
func (r *Request) AfterReply(fn func()) { r.after = append(r.after, fn) }

// Decode unmarshals the request's arguments into v.
func (r *Request) Decode(v any) error {
	if len(r.args) == 0 || string(r.args) == "null" {
		return nil
	}
	if err := json.Unmarshal(r.args, v); err != nil {
		return Errorf(CodeInvalidArgument, "malformed %s request: %v", r.Op, err)
	}
	return nil
}

// HandlerFunc serves one request. A returned *Error reaches the host as is; any other error is
// reported as CodeInternal. Requests of one connection run concurrently.
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// Server is the agent side: it serves connections and broadcasts events to every live one.
type Server struct {
	Handler HandlerFunc
	// OnPanic, if set, is told about a handler panic (the request fails, the agent goes on).
	OnPanic func(op Op, v any, stack []byte)

	mu       sync.Mutex
	sessions map[*session]struct{}
}

type session struct {
	out  chan outFrame
	done chan struct{} // closed when the connection is finished: stops the writer
	dead chan struct{} // closed by the writer when the connection can't be written
}

type outFrame struct {
	kind    Kind
	id      uint32
	body    []byte
	written chan struct{} // closed once the frame is written or can't be; may be nil
}

// eventQueue bounds events buffered for a slow host; beyond it, events are dropped (the agent keeps
// the full timeline and Hello returns it). Responses are never dropped.
const eventQueue = 256

// Broadcast sends ev to every connected host without blocking.
func (s *Server) Broadcast(ev Event) {
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		select {
		case ss.out <- outFrame{kind: KindEvent, body: body}:
		default:
		}
	}
}

// ServeConn serves one connection until it fails or ctx ends; it closes rw.
func (s *Server) ServeConn(ctx context.Context, rw io.ReadWriteCloser) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ss := &session{out: make(chan outFrame, eventQueue), done: make(chan struct{}), dead: make(chan struct{})}
	s.mu.Lock()
	if s.sessions == nil {
		s.sessions = map[*session]struct{}{}
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()

	var wg sync.WaitGroup
	writeErr := make(chan error, 1)
	go func() { // the only writer: keeps frames whole and lets Broadcast stay non-blocking
		defer close(ss.dead)
		for {
			select {
			case f := <-ss.out:
				err := WriteFrame(rw, f.kind, f.id, f.body, nil)
				if f.written != nil {
					close(f.written)
				}
				if err != nil {
					writeErr <- err
					cancel()
					return
				}
			case <-ss.done:
				return
			}
		}
	}()
	go func() {
		<-ctx.Done()
		rw.Close() // unblocks the reader
	}()

	var err error
	for {
		var f *Frame
		f, err = ReadFrame(rw)
		if errors.Is(err, ErrVersion) && f != nil && f.Kind == KindRequest {
			s.reply(ss, f.ID, nil, Errorf(CodeVersionMismatch, "host speaks another control protocol version; use the luksmount and guest images from one build"), nil)
			continue
		}
		if err != nil {
			break
		}
		if f.Kind != KindRequest {
			f.Wipe()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			result, after, err := s.handle(ctx, f)
			f.Wipe() // before replying: the host may drop its copy as soon as it sees the reply
			s.reply(ss, f.ID, result, err, after)
		}()
	}
	cancel()
	wg.Wait()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	close(ss.done)
	select {
	case werr := <-writeErr:
		return werr
	default:
	}
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) handle(ctx context.Context, f *Frame) (result any, after []func(), err error) {
	var req struct {
		Op   Op              `json:"op"`
		Args json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(f.Body, &req); err != nil {
		return nil, nil, Errorf(CodeInvalidArgument, "malformed request: %v", err)
	}
	r := &Request{Op: req.Op, Secret: f.Secret, args: req.Args}
	defer func() {
		if v := recover(); v != nil {
			if s.OnPanic != nil {
				s.OnPanic(req.Op, v, debug.Stack())
			}
			result, err = nil, Errorf(CodeInternal, "agent bug while handling %s: %v", req.Op, v)
		}
		after = r.after
	}()
	defer func() { clear(r.Secret); r.Secret = nil }()
	result, err = s.Handler(ctx, r)
	return result, r.after, err
}

func (s *Server) reply(ss *session, id uint32, result any, err error, after []func()) {
	var resp response
	if err != nil {
		var ce *Error
		if !errors.As(err, &ce) {
			ce = &Error{Code: CodeInternal, Message: err.Error()}
		}
		resp.Error = ce
	} else {
		resp.Result = result
	}
	body, merr := json.Marshal(resp)
	if merr != nil {
		body, _ = json.Marshal(response{Error: Errorf(CodeInternal, "cannot encode reply: %v", merr)})
	}
	of := outFrame{kind: KindResponse, id: id, body: body}
	if len(after) > 0 {
		of.written = make(chan struct{})
	}
	select {
	case ss.out <- of:
		if of.written != nil {
			select {
			case <-of.written:
			case <-ss.dead:
			}
		}
	case <-ss.dead:
	}
	for _, fn := range after {
		fn()
	}
}

// String makes codes print plainly in logs.
func (c Code) String() string { return string(c) }
