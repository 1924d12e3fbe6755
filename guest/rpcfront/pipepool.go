package rpcfront

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// PipePool passes whole RPC calls to a server that serves a net.Listener,
// over in-memory connections, so that several calls run at once even if
// that server handles each connection one call at a time.
type PipePool struct {
	l       *chanListener
	free    chan *pipeConn
	max     int
	timeout time.Duration
	mu      sync.Mutex
	n       int
}

// DefaultPassThroughTimeout bounds one passed-through call: generous for a
// slow disk, short enough that a stuck inner server cannot hold a
// connection forever.
const DefaultPassThroughTimeout = 30 * time.Second

// ErrPassThroughTimeout means the inner server did not answer in time; its
// connection was closed and will be replaced.
var ErrPassThroughTimeout = errors.New("passed-through call timed out")

type pipeConn struct {
	c  net.Conn
	br *bufio.Reader
}

// NewPipePool starts serve on an in-memory listener and allows up to size
// calls through it at once, each answered within timeout (0 means
// DefaultPassThroughTimeout).
func NewPipePool(serve func(net.Listener) error, size int, timeout time.Duration) *PipePool {
	if timeout <= 0 {
		timeout = DefaultPassThroughTimeout
	}
	p := &PipePool{l: newChanListener(), free: make(chan *pipeConn, size), max: size, timeout: timeout}
	go serve(p.l)
	return p
}

// ErrPoolClosed is returned after Close.
var ErrPoolClosed = errors.New("rpc pipe pool closed")

func (p *PipePool) get() (*pipeConn, error) {
	select {
	case pc := <-p.free:
		return pc, nil
	default:
	}
	p.mu.Lock()
	if p.n < p.max {
		p.n++
		p.mu.Unlock()
		a, b := net.Pipe()
		if err := p.l.push(b); err != nil {
			p.mu.Lock()
			p.n--
			p.mu.Unlock()
			return nil, err
		}
		return &pipeConn{c: a, br: bufio.NewReaderSize(a, 64<<10)}, nil
	}
	p.mu.Unlock()
	pc, ok := <-p.free
	if !ok {
		return nil, ErrPoolClosed
	}
	return pc, nil
}

// RoundTrip sends one call message and returns the reply message. If the
// inner server fails or takes longer than the pool's timeout, the connection
// is closed (the inner server sees it fail) and a fresh one takes its slot.
func (p *PipePool) RoundTrip(msg []byte) ([]byte, error) {
	pc, err := p.get()
	if err != nil {
		return nil, err
	}
	pc.c.SetDeadline(time.Now().Add(p.timeout))
	if _, err := pc.c.Write(AppendRecordMark(nil, msg)); err != nil {
		p.drop(pc)
		return nil, fmt.Errorf("cannot pass call through: %w", timeoutErr(err, p.timeout))
	}
	rep, err := ReadRecord(pc.br, 64<<20)
	if err != nil {
		p.drop(pc)
		return nil, fmt.Errorf("cannot read passed-through reply: %w", timeoutErr(err, p.timeout))
	}
	pc.c.SetDeadline(time.Time{})
	p.free <- pc
	return rep, nil
}

func timeoutErr(err error, d time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w after %v", ErrPassThroughTimeout, d)
	}
	return err
}

func (p *PipePool) drop(pc *pipeConn) {
	pc.c.Close()
	p.mu.Lock()
	p.n--
	p.mu.Unlock()
}

// Close stops the inner server's listener.
func (p *PipePool) Close() error { return p.l.Close() }

type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) error {
	select {
	case l.ch <- c:
		return nil
	case <-l.done:
		return ErrPoolClosed
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "go-nfs" }
