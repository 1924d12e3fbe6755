package rpcfront

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/xdr"
)

// keyed orders calls by their first argument word; the call with XID 1 is
// stuck until release is closed. It records the order calls ran in.
type keyed struct {
	release chan struct{}
	mu      sync.Mutex
	ran     []uint32
}

func (k *keyed) OrderKey(c *Call) string {
	if len(c.Args) < 4 {
		return ""
	}
	return string(c.Args[:4])
}

func (k *keyed) Dispatch(ctx context.Context, c *Call) []byte {
	if c.XID == 1 {
		<-k.release
	}
	k.mu.Lock()
	k.ran = append(k.ran, c.XID)
	k.mu.Unlock()
	return Accepted(c.XID, Success).B
}

func keyedCall(xid uint32, key uint32) []byte {
	w := &xdr.Writer{}
	for _, v := range []uint32{xid, 0, 2, 1, 1, 1, 0, 0, 0, 0, key} {
		w.Uint32(v)
	}
	return AppendRecordMark(nil, w.B)
}

func TestOrderKeepsArrivalOrderPerKey(t *testing.T) {
	d := &keyed{release: make(chan struct{})}
	s := NewServer(d, Config{})
	a, b := net.Pipe()
	go s.ServeConn(a)
	var once sync.Once
	release := func() { once.Do(func() { close(d.release) }) }
	defer s.Close()
	defer release() // before Close, which waits for the stuck call
	br := bufio.NewReader(b)
	// 1 and 2..6 share key 7; 10 has key 8 and must not wait.
	for _, x := range []uint32{1, 2, 3, 4, 5, 6} {
		b.Write(keyedCall(x, 7))
	}
	b.Write(keyedCall(10, 8))
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	rec, err := ReadRecord(br, 1<<10)
	if err != nil || xdr.NewReader(rec).Uint32() != 10 {
		t.Fatalf("call with another key did not overtake the stuck one: %v", err)
	}
	b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if rec, err := ReadRecord(br, 1<<10); err == nil {
		t.Fatalf("call %d ran before the stuck call on its key", xdr.NewReader(rec).Uint32())
	}
	release()
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := 0; i < 6; i++ {
		if _, err := ReadRecord(br, 1<<10); err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	want := []uint32{10, 1, 2, 3, 4, 5, 6}
	for i := range want {
		if d.ran[i] != want[i] {
			t.Fatalf("ran in order %v, want %v", d.ran, want)
		}
	}
}
