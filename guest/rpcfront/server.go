package rpcfront

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
)

// Dispatcher answers one call. It returns the reply message (without record
// mark), or nil to send nothing. It may run concurrently with other calls.
type Dispatcher interface {
	Dispatch(ctx context.Context, c *Call) []byte
}

// Orderer is an optional Dispatcher extension. Calls of one connection with
// the same non-empty key run one at a time, in the order they arrived
// (calls with different keys, or none, still run in parallel).
type Orderer interface {
	OrderKey(c *Call) string
}

// orderQueue chains the calls that share a key: each waits for the one
// that arrived before it.
type orderQueue struct {
	mu   sync.Mutex
	last map[string]chan struct{}
}

func (q *orderQueue) enter(key string) (wait <-chan struct{}, done chan struct{}) {
	done = make(chan struct{})
	q.mu.Lock()
	wait = q.last[key]
	q.last[key] = done
	q.mu.Unlock()
	return wait, done
}

func (q *orderQueue) leave(key string, done chan struct{}) {
	q.mu.Lock()
	if q.last[key] == done {
		delete(q.last, key)
	}
	q.mu.Unlock()
	close(done)
}

// Authorizer decides whether a call's credentials may use the server. It
// returns 0 to allow or an auth_stat to refuse with.
type Authorizer func(c *Call) uint32

// Config tunes a Server.
type Config struct {
	MaxRecord   int        // largest call accepted (default 2 MiB + 4 KiB)
	MaxInFlight int        // calls run at once per connection (default 32)
	Authorize   Authorizer // nil allows everything
	Logf        func(format string, args ...any)
}

// Server runs a Dispatcher behind RPC record marking.
type Server struct {
	d   Dispatcher
	cfg Config

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	ls     []net.Listener
	closed bool
	wg     sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("rpc server closed")

// NewServer returns a Server that hands calls to d.
func NewServer(d Dispatcher, cfg Config) *Server {
	if cfg.MaxRecord == 0 {
		cfg.MaxRecord = 2<<20 + 4096
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 32
	}
	return &Server{d: d, cfg: cfg, conns: map[net.Conn]struct{}{}}
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// Serve accepts connections on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.ls = append(s.ls, l)
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("cannot accept rpc connection: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Close stops the listeners, closes every connection and waits for calls in
// flight to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, l := range s.ls {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

type connWriter struct {
	mu  sync.Mutex
	c   net.Conn
	buf []byte
}

func (w *connWriter) send(msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = AppendRecordMark(w.buf[:0], msg)
	_, err := w.c.Write(w.buf)
	if cap(w.buf) > 4<<20 {
		w.buf = nil
	}
	return err
}

// ServeConn serves one connection until it closes (exported for tests and fuzzing).
func (s *Server) ServeConn(c net.Conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.serveConn(c)
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	var calls sync.WaitGroup
	defer func() {
		cancel()
		c.Close()
		calls.Wait()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, 256<<10)
	w := &connWriter{c: c}
	sem := make(chan struct{}, s.cfg.MaxInFlight)
	order := &orderQueue{last: map[string]chan struct{}{}}
	remote := c.RemoteAddr().String()
	for {
		rec, err := ReadRecord(br, s.cfg.MaxRecord)
		if err != nil {
			if errors.Is(err, ErrRecordTooLarge) {
				s.logf("nfs: dropping connection from %s: %v", c.RemoteAddr(), err)
			}
			return
		}
		// Each record is parsed once, here. The order key is taken in
		// arrival order, before the call can race with the ones read after it.
		call, perr := ParseCall(rec)
		if call != nil {
			call.Remote = remote
		}
		var key string
		var wait <-chan struct{}
		var done chan struct{}
		if o, ok := s.d.(Orderer); ok && perr == nil {
			key = o.OrderKey(call)
		}
		sem <- struct{}{}
		if key != "" {
			wait, done = order.enter(key)
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			defer func() { <-sem }()
			if key != "" {
				defer order.leave(key, done)
				if wait != nil {
					<-wait
				}
			}
			if reply := s.handle(ctx, call, perr); reply != nil {
				if err := w.send(reply); err != nil {
					c.Close()
				}
			}
		}()
	}
}

// Handle answers one record: parses it, checks credentials and dispatches,
// recovering from panics. It returns the reply message or nil.
func (s *Server) Handle(ctx context.Context, rec []byte) []byte {
	call, err := ParseCall(rec)
	if call != nil {
		call.Remote = "test"
	}
	return s.handle(ctx, call, err)
}

// handle answers a parsed call; err is ParseCall's.
func (s *Server) handle(ctx context.Context, call *Call, err error) (reply []byte) {
	if err != nil {
		if call == nil {
			return nil // not a call, or no xid: nothing sensible to answer
		}
		return Accepted(call.XID, GarbageArgs).B
	}
	if call.RPCVers != 2 {
		return RPCMismatchReply(call.XID)
	}
	if s.cfg.Authorize != nil {
		if st := s.cfg.Authorize(call); st != 0 {
			return AuthErrorReply(call.XID, st)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			s.logf("nfs: internal error in call prog %d proc %d (answered SYSTEM_ERR): %v\n%s", call.Prog, call.Proc, p, debug.Stack())
			reply = Accepted(call.XID, SystemErr).B
		}
	}()
	return s.d.Dispatch(ctx, call)
}
