package vnet

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// Frames written one by one come out in order and whole, however they are coalesced.
func TestBatchConnKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	bc := newBatchConn(a)
	var want bytes.Buffer
	frames := make([][]byte, 500)
	for i := range frames {
		frames[i] = make([]byte, 1+i*37%3000)
		rand.Read(frames[i])
		want.Write(frames[i])
	}
	go func() {
		for _, f := range frames {
			if _, err := bc.Write(f); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	got := make([]byte, want.Len())
	b.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("batched frames arrived out of order or changed")
	}
	b.Close()
	// A dead link fails later writes instead of queueing for ever.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := bc.Write([]byte("x")); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed link kept succeeding")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bc.Close()
}

func TestForwardBatched(t *testing.T) {
	on := true
	n := startNetwork(t, Config{Batch: &on, MTU: 9000})
	g := startFakeGuestMTU(t, n.cfg.SocketPath, 9000)
	g.echoServer(t, NFSPort)
	echoThrough(t, n.Addr().String(), 4<<20)
}
