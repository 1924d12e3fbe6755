package rpcfront

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

type nullDispatcher struct{}

func (nullDispatcher) Dispatch(ctx context.Context, c *Call) []byte {
	return Accepted(c.XID, Success).B
}

// closedSoon reports whether the server closed c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// At MaxConns a newcomer takes the place of a connection that never made a
// call, or of one idle for a second; a connection in the middle of a record
// or just used is never closed for it, and when none is idle the newcomer is
// refused. A half-sent record loses its
// connection after RecordTimeout.
func TestConnectionCap(t *testing.T) {
	s := NewServer(nullDispatcher{}, Config{MaxConns: 2, RecordTimeout: time.Second})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		time.Sleep(50 * time.Millisecond) // accepted
		return c
	}
	a := dial()
	b := dial()
	b.Write(nullCall(1)) // b is in use
	c := dial()
	if !closedSoon(a, time.Second) {
		t.Fatal("the connection that never made a call was not closed for a newcomer")
	}
	if closedSoon(c, 100*time.Millisecond) {
		t.Fatal("the newcomer was closed")
	}
	if _, err := b.Read(make([]byte, 28)); err != nil {
		t.Fatalf("the connection in use lost its reply: %v", err)
	}
	b.Write([]byte{0x80, 0, 0, 100, 1, 2}) // a record begun, not finished
	c.Write([]byte{0x80})                  // a record mark begun
	time.Sleep(50 * time.Millisecond)
	d := dial()
	if !closedSoon(d, time.Second) {
		t.Fatal("a newcomer was let in although no connection was idle")
	}
	if !closedSoon(b, 3*time.Second) || !closedSoon(c, 3*time.Second) {
		t.Fatal("half-sent records kept their connections past RecordTimeout")
	}
}

func nullCall(xid byte) []byte {
	return AppendRecordMark(nil, []byte{0, 0, 0, xid, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
}
