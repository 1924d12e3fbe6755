package vnet

import (
	"net"
	"sync"
)

// batchConn coalesces the switch's frame writes towards QEMU. gvisor-tap-vsock writes every
// frame with its own syscall under a global lock (tap/switch.go txBuf); when the stack sends a
// window of segments at once, batchConn copies them into one buffer that a single goroutine
// writes with one syscall. An idle link pays one goroutine hand-off per frame and no delay.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error
	closed  bool
}

// maxPending bounds what Write queues before it waits for the writer (backpressure).
const maxPending = 1 << 20

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.cond = sync.NewCond(&b.mu)
	go b.writer()
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closed && len(b.pending) > 0 && len(b.pending)+len(p) > maxPending {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	b.pending = append(b.pending, p...)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *batchConn) writer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.pending) == 0 && !b.closed && b.err == nil {
			b.cond.Wait()
		}
		if b.err != nil || (b.closed && len(b.pending) == 0) {
			return
		}
		buf := b.pending
		b.pending = b.spare[:0]
		b.cond.Broadcast()
		b.mu.Unlock()
		_, err := b.Conn.Write(buf)
		b.mu.Lock()
		b.spare = buf
		if err != nil {
			b.err = err
			b.cond.Broadcast()
			return
		}
	}
}

func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}

// batchedLink reads through the filter and writes through the batcher.
type batchedLink struct {
	net.Conn // the filter (reads)
	w        *batchConn
}

func (l *batchedLink) Write(p []byte) (int, error) { return l.w.Write(p) }
func (l *batchedLink) Close() error {
	l.w.Close()
	return l.Conn.Close()
}
