package rpcfront

import (
	"sync"
	"sync/atomic"
	"time"
)

// Limits on what clients can make the server hold (defaults in NewServer).
// Memory held for clients is at most MaxConns × (ConnMemory + readBufSize)
// plus goroutine stacks: each connection's records being read, calls in
// flight and replies waiting to be written all count against its own
// ConnMemory, so no connection can take memory from another.
const (
	DefaultMaxConns      = 16
	DefaultConnMemory    = 4 << 20
	DefaultRecordTimeout = 30 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	readBufSize          = 64 << 10
	// defaultReplySize is reserved for a call's reply when the Dispatcher is
	// no ReplySizer; the true size is accounted once the reply exists.
	defaultReplySize = 4 << 10
)

// ReplySizer is an optional Dispatcher extension: the largest reply a call
// can produce, reserved from its connection's memory before it runs.
type ReplySizer interface {
	MaxReplySize(c *Call) int
}

// budget is one connection's memory: a counting semaphore in bytes that
// the connection's reader waits on, so a client that sends faster than its
// calls finish is slowed by TCP, not given more memory.
type budget struct {
	mu     sync.Mutex
	cond   sync.Cond
	avail  int
	closed bool
}

func newBudget(n int) *budget {
	b := &budget{avail: n}
	b.cond.L = &b.mu
	return b
}

// acquire waits until n bytes are free and takes them; false if the
// connection closed meanwhile.
func (b *budget) acquire(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.avail < n && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.avail -= n
	return true
}

// release returns n bytes (n may be negative: a reply larger than reserved).
func (b *budget) release(n int) {
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// minIdle is how long a connection that has made calls must have been idle
// before a newcomer may take its place.
const minIdle = time.Second

// connState is what the accept loop knows of a connection to pick one to
// close at MaxConns (see admitLocked).
type connState struct {
	busy      atomic.Int32 // calls in flight, plus 1 while a record is being read
	idleSince atomic.Int64 // unix nanoseconds
	used      atomic.Bool  // a record has begun
}

func (c *connState) enter() { c.busy.Add(1); c.used.Store(true) }

func (c *connState) leave() {
	if c.busy.Add(-1) == 0 {
		c.idleSince.Store(time.Now().UnixNano())
	}
}
