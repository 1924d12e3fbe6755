package rpcfront

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"
)

// stallServer echoes each record back, except records starting with 's',
// which it never answers; it reports on closed when a stalled connection is
// closed under it.
func stallServer(closed chan<- struct{}) func(net.Listener) error {
	return func(l net.Listener) error {
		for {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			go func() {
				br := bufio.NewReader(c)
				for {
					rec, err := ReadRecord(br, 1<<20)
					if err != nil {
						return
					}
					if rec[0] == 's' {
						_, err := ReadRecord(br, 1<<20) // blocks until the pool closes us
						if err != nil {
							closed <- struct{}{}
						}
						return
					}
					c.Write(AppendRecordMark(nil, rec))
				}
			}()
		}
	}
}

// A call the inner server never answers times out, its connection is
// closed, and the slot it held serves the next call on a fresh connection.
func TestPipePoolTimeout(t *testing.T) {
	closed := make(chan struct{}, 1)
	p := NewPipePool(stallServer(closed), 1, 100*time.Millisecond)
	defer p.Close()
	if rep, err := p.RoundTrip([]byte("ok1")); err != nil || string(rep) != "ok1" {
		t.Fatalf("first call: %q, %v", rep, err)
	}
	start := time.Now()
	_, err := p.RoundTrip([]byte("stall"))
	if !errors.Is(err, ErrPassThroughTimeout) {
		t.Fatalf("stalled call: %v, want ErrPassThroughTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the stalled inner connection was not closed")
	}
	// The only slot is free again.
	for i := 0; i < 3; i++ {
		if rep, err := p.RoundTrip([]byte("ok2")); err != nil || string(rep) != "ok2" {
			t.Fatalf("call after timeout: %q, %v", rep, err)
		}
	}
}
