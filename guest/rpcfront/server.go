package rpcfront

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Dispatcher answers one call. It returns the reply message (without record
// mark), or nil to send nothing. It may run concurrently with other calls.
// The reply belongs to the server once returned (it is recycled after it is
// sent: never return a shared slice), and Dispatch must not keep c.Args or
// anything aliasing it after it returns (the record is recycled too).
// GetBuffer gives reply buffers that are recycled.
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

// Config tunes a Server. Zero fields get the defaults.
type Config struct {
	MaxRecord   int        // largest call accepted (default 2 MiB + 4 KiB)
	MaxInFlight int        // calls run at once per connection (default 32)
	MaxConns    int        // connections at once (DefaultMaxConns)
	ConnMemory  int        // bytes of records and replies one connection may hold (DefaultConnMemory); at least MaxRecord + the largest reply
	Authorize   Authorizer // nil allows everything
	// RecordTimeout: once a record has begun, each fragment must arrive
	// within it (half-sent records); WriteTimeout: each reply must be
	// taken by the client within it (slow readers). Either closes the
	// connection.
	RecordTimeout, WriteTimeout time.Duration
	Logf                        func(format string, args ...any)
}

// Server runs a Dispatcher behind RPC record marking.
type Server struct {
	d   Dispatcher
	cfg Config

	mu     sync.Mutex
	conns  map[net.Conn]*connState
	ls     []net.Listener
	closed bool
	wg     sync.WaitGroup

	lastRefusal time.Time
	accepted    atomic.Int64 // connections admitted or refused (tests wait on it)
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
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnMemory == 0 {
		cfg.ConnMemory = max(DefaultConnMemory, 2*cfg.MaxRecord)
	}
	if cfg.RecordTimeout == 0 {
		cfg.RecordTimeout = DefaultRecordTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return &Server{d: d, cfg: cfg, conns: map[net.Conn]*connState{}}
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
		st, ok := s.admitLocked(c)
		s.accepted.Add(1)
		if !ok {
			logIt := time.Since(s.lastRefusal) > 10*time.Second // a flood is logged once per 10 s
			if logIt {
				s.lastRefusal = time.Now()
			}
			s.mu.Unlock()
			if logIt {
				s.logf("nfs: refusing connections from %s and others: %d connections, none idle", c.RemoteAddr(), s.cfg.MaxConns)
			}
			c.Close()
			continue
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, st)
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
	mu      sync.Mutex
	c       net.Conn
	timeout time.Duration
	mark    [4]byte
	bufs    net.Buffers
}

// send writes one reply as a record, mark and message in one writev (no
// copy); a client that does not take it within the timeout loses its
// connection.
func (w *connWriter) send(msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	binary.BigEndian.PutUint32(w.mark[:], uint32(len(msg))|0x80000000)
	w.bufs = append(w.bufs[:0], w.mark[:], msg)
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.bufs.WriteTo(w.c)
	return err
}

// ServeConn serves one connection until it closes (exported for tests and fuzzing).
func (s *Server) ServeConn(c net.Conn) {
	st := &connState{}
	s.mu.Lock()
	s.conns[c] = st
	s.wg.Add(1)
	s.mu.Unlock()
	s.serveConn(c, st)
}

// conn is one connection being served.
type conn struct {
	s      *Server
	c      net.Conn
	st     *connState
	mem    *budget
	w      *connWriter
	sem    chan struct{} // calls in flight
	order  *orderQueue
	calls  sync.WaitGroup
	ctx    context.Context
	remote string
}

func (s *Server) serveConn(c net.Conn, st *connState) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cn := &conn{s: s, c: c, st: st, ctx: ctx, remote: c.RemoteAddr().String(),
		mem:   newBudget(s.cfg.ConnMemory),
		w:     &connWriter{c: c, timeout: s.cfg.WriteTimeout},
		sem:   make(chan struct{}, s.cfg.MaxInFlight),
		order: &orderQueue{last: map[string]chan struct{}{}},
	}
	defer func() {
		cancel()
		c.Close()
		cn.mem.close()
		cn.calls.Wait()
		s.mu.Lock()
		if s.conns[c] == st {
			delete(s.conns, c)
		}
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, readBufSize)
	for {
		rec, err := s.readRecord(c, br, st, cn.mem)
		if err != nil {
			if errors.Is(err, ErrRecordTooLarge) || errors.Is(err, os.ErrDeadlineExceeded) {
				s.logf("nfs: dropping connection from %s: %v", c.RemoteAddr(), err)
			}
			return
		}
		if !cn.start(rec) {
			return
		}
	}
}

// start parses a record (once, here) and runs its call in a goroutine. The
// order key is taken in arrival order, before the call can race with the
// ones read after it, and the reply's room is taken before the call runs,
// so replies no client reads cannot pile up. False: the connection closed.
func (cn *conn) start(rec []byte) bool {
	call, perr := ParseCall(rec)
	if call != nil {
		call.Remote = cn.remote
	}
	var key string
	if o, ok := cn.s.d.(Orderer); ok && perr == nil {
		key = o.OrderKey(call)
	}
	held, room := len(rec), defaultReplySize
	if sz, ok := cn.s.d.(ReplySizer); ok && perr == nil {
		room = sz.MaxReplySize(call)
	}
	if !cn.mem.acquire(room) {
		cn.mem.release(held)
		cn.st.leave()
		return false
	}
	held += room
	cn.sem <- struct{}{}
	var wait <-chan struct{}
	var done chan struct{}
	if key != "" {
		wait, done = cn.order.enter(key)
	}
	cn.calls.Add(1)
	go func() {
		defer cn.calls.Done()
		defer func() { <-cn.sem }()
		defer cn.st.leave()
		defer func() { cn.mem.release(held) }()
		if key != "" {
			defer cn.order.leave(key, done)
			if wait != nil {
				<-wait
			}
		}
		reply := cn.s.handle(cn.ctx, call, perr)
		if len(reply) > room { // misestimated: account the truth
			cn.mem.release(room - len(reply))
			held += len(reply) - room
		}
		if reply != nil && cn.w.send(reply) != nil {
			cn.c.Close()
		}
		PutBuffer(reply)
		PutBuffer(rec)
	}()
	return true
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
