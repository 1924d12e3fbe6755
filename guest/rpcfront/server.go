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
	"time"
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

// admitLocked registers c. At MaxConns it first closes, to make room, a
// connection that never sent a call (oldest first: real clients call at
// once) or else one idle for at least minIdle (idle longest first: NFS
// clients reconnect by themselves); if there is none, c is refused, so a
// client that is using its connection is never cut off by a flood.
func (s *Server) admitLocked(c net.Conn) (*connState, bool) {
	if len(s.conns) >= s.cfg.MaxConns {
		var victim net.Conn
		var best int64
		now := time.Now().UnixNano()
		for vc, st := range s.conns {
			if st.busy.Load() != 0 {
				continue
			}
			rank := st.idleSince.Load() // smaller is closed first
			if !st.used.Load() {
				rank -= now // before every used connection
			} else if now-rank < int64(minIdle) {
				continue
			}
			if victim == nil || rank < best {
				victim, best = vc, rank
			}
		}
		if victim == nil {
			return nil, false
		}
		victim.Close() // its serveConn removes it
		delete(s.conns, victim)
		s.logf("nfs: at %d connections: closed idle %s for %s", s.cfg.MaxConns, victim.RemoteAddr(), c.RemoteAddr())
	}
	st := &connState{}
	st.idleSince.Store(time.Now().UnixNano())
	s.conns[c] = st
	return st, true
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

func (s *Server) serveConn(c net.Conn, st *connState) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	var calls sync.WaitGroup
	mem := newBudget(s.cfg.ConnMemory)
	defer func() {
		cancel()
		c.Close()
		mem.close()
		calls.Wait()
		s.mu.Lock()
		if s.conns[c] == st {
			delete(s.conns, c)
		}
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, readBufSize)
	w := &connWriter{c: c, timeout: s.cfg.WriteTimeout}
	sem := make(chan struct{}, s.cfg.MaxInFlight)
	order := &orderQueue{last: map[string]chan struct{}{}}
	remote := c.RemoteAddr().String()
	sizer, _ := s.d.(ReplySizer)
	for {
		rec, err := s.readRecord(c, br, st, mem)
		if err != nil {
			if errors.Is(err, ErrRecordTooLarge) || errors.Is(err, os.ErrDeadlineExceeded) {
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
		// The reply's room is taken before the call runs, so replies no
		// client reads cannot pile up.
		held := len(rec)
		replyRoom := defaultReplySize
		if sizer != nil && perr == nil {
			replyRoom = sizer.MaxReplySize(call)
		}
		if !mem.acquire(replyRoom) {
			mem.release(held)
			st.leave()
			return
		}
		held += replyRoom
		sem <- struct{}{}
		if key != "" {
			wait, done = order.enter(key)
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			defer func() { <-sem }()
			defer st.leave()
			defer func() { mem.release(held) }()
			if key != "" {
				defer order.leave(key, done)
				if wait != nil {
					<-wait
				}
			}
			reply := s.handle(ctx, call, perr)
			if len(reply) > replyRoom { // misestimated: account the truth
				mem.release(replyRoom - len(reply))
				held += len(reply) - replyRoom
			}
			if reply != nil {
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

// readRecord waits (without a deadline: idle connections are fine) for the
// next record to begin, then reads it with RecordTimeout per fragment, its
// bytes taken from mem before they are allocated. On success the record
// counts as a call in flight on st and holds len(rec) bytes of mem.
func (s *Server) readRecord(c net.Conn, br *bufio.Reader, st *connState, mem *budget) ([]byte, error) {
	c.SetReadDeadline(time.Time{})
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	st.enter()
	c.SetReadDeadline(time.Now().Add(s.cfg.RecordTimeout)) // a record mark sent in part
	held := 0
	rec, err := readFragments(br, s.cfg.MaxRecord, func(n int) error {
		if !mem.acquire(n) {
			return net.ErrClosed
		}
		held += n
		c.SetReadDeadline(time.Now().Add(s.cfg.RecordTimeout))
		return nil
	})
	if err != nil {
		mem.release(held)
		st.leave()
		return nil, err
	}
	return rec, nil
}
