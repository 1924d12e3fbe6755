package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, KindRequest, 7, []byte(`{"op":"unlock"}`), []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFrame(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindRequest || f.ID != 7 || string(f.Body) != `{"op":"unlock"}` || string(f.Secret) != "s3cret" {
		t.Fatalf("ReadFrame = %+v; want request 7 with body and secret", f)
	}
	raw := f.buf
	f.Wipe()
	if !bytes.Equal(raw, make([]byte, len(raw))) {
		t.Fatal("Wipe left bytes in the frame buffer")
	}
}

func TestReadFrameRejectsBadInput(t *testing.T) {
	for name, in := range map[string][]byte{
		"short length":   {0, 0, 0, 3, 1, 1, 0, 0},
		"huge length":    {0xff, 0xff, 0xff, 0xff},
		"body overrun":   {0, 0, 0, 12, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 99},
		"truncated body": {0, 0, 0, 20, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8, 'x'},
	} {
		if _, err := ReadFrame(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: ReadFrame succeeded; want an error", name)
		}
	}
	var buf bytes.Buffer
	WriteFrame(&buf, KindRequest, 3, []byte(`{}`), nil)
	b := buf.Bytes()
	b[4] = ProtocolVersion + 1
	f, err := ReadFrame(bytes.NewReader(b))
	if !errors.Is(err, ErrVersion) || f == nil || f.ID != 3 {
		t.Fatalf("ReadFrame(other version) = %v, %v; want ErrVersion with the id", f, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	WriteFrame(&buf, KindRequest, 1, []byte(`{"op":"hello","args":{}}`), []byte("pw"))
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 12, 1, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ReadFrame(bytes.NewReader(b))
		if err == nil && len(fr.Body)+len(fr.Secret)+headerLen > len(b) {
			t.Fatal("frame larger than its input")
		}
	})
}

// pair connects a Client and a Server over a pipe.
func pair(t *testing.T, h HandlerFunc, onEvent func(Event)) (*Client, *Server, chan error) {
	t.Helper()
	a, b := net.Pipe()
	srv := &Server{Handler: h}
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), b) }()
	c := NewClient(a, onEvent)
	t.Cleanup(func() { c.Close() })
	return c, srv, done
}

func TestCallTypedErrorsAndSecrets(t *testing.T) {
	var seen []byte
	var held *Request
	c, _, _ := pair(t, func(ctx context.Context, r *Request) (any, error) {
		switch r.Op {
		case OpUnlock:
			var req UnlockRequest
			if err := r.Decode(&req); err != nil {
				return nil, err
			}
			seen = append([]byte(nil), r.Secret...)
			held = r
			if string(r.Secret) != "right" {
				return nil, Errorf(CodeWrongPassphrase, "no key available with this passphrase")
			}
			return UnlockReply{Mapper: "/dev/mapper/" + req.Device}, nil
		}
		return nil, errors.New("boom")
	}, nil)
	ctx := context.Background()
	_, err := c.Unlock(ctx, UnlockRequest{Device: "x"}, []byte("wrong"))
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Unlock(wrong) error = %v; want ErrWrongPassphrase", err)
	}
	if errors.Is(err, ErrNotEncrypted) {
		t.Fatal("a wrong-passphrase error matched ErrNotEncrypted")
	}
	r, err := c.Unlock(ctx, UnlockRequest{Device: "x"}, []byte("right"))
	if err != nil || r.Mapper != "/dev/mapper/x" {
		t.Fatalf("Unlock(right) = %+v, %v", r, err)
	}
	if string(seen) != "right" {
		t.Fatalf("handler saw secret %q", seen)
	}
	if held.Secret != nil {
		t.Fatal("request secret still referenced after the handler returned")
	}
	_, err = c.Status(ctx)
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != CodeInternal || !strings.Contains(ce.Message, "boom") {
		t.Fatalf("plain handler error = %v; want CodeInternal carrying the text", err)
	}
}

func TestConcurrentCallsAndEvents(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var events []Event
	c, srv, _ := pair(t, func(ctx context.Context, r *Request) (any, error) {
		if r.Op == OpUnlock {
			<-release // a slow KDF must not block status
			return UnlockReply{Mapper: "m"}, nil
		}
		return StatusReply{State: StateReady}, nil
	}, func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlockDone := make(chan error, 1)
	go func() { _, err := c.Unlock(ctx, UnlockRequest{}, []byte("k")); unlockDone <- err }()
	st, err := c.Status(ctx)
	if err != nil || st.State != StateReady {
		t.Fatalf("Status during unlock = %+v, %v", st, err)
	}
	srv.Broadcast(Event{Kind: EventProgress, Step: "unlock", Message: "deriving key"})
	close(release)
	if err := <-unlockDone; err != nil {
		t.Fatal(err)
	}
	// The event was queued before the unlock reply on the same ordered stream.
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Message != "deriving key" {
		t.Fatalf("events = %+v; want the broadcast progress event", events)
	}
}

func TestPanicFailsOnlyThatRequest(t *testing.T) {
	c, _, _ := pair(t, func(ctx context.Context, r *Request) (any, error) {
		if r.Op == OpProbe {
			panic("nil map")
		}
		return StatusReply{State: StateReady}, nil
	}, nil)
	ctx := context.Background()
	if _, err := c.Probe(ctx); !errors.Is(err, &Error{Code: CodeInternal}) {
		t.Fatalf("Probe error = %v; want internal", err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status after a panic: %v", err)
	}
}

func TestCallAfterAgentGoneFails(t *testing.T) {
	a, b := net.Pipe()
	c := NewClient(a, nil)
	b.Close()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not notice the closed connection")
	}
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Status on a dead connection = %v; want ErrClosed", err)
	}
}

func TestVersionMismatchIsAnswered(t *testing.T) {
	a, b := net.Pipe()
	srv := &Server{Handler: func(ctx context.Context, r *Request) (any, error) { return nil, nil }}
	go srv.ServeConn(context.Background(), b)
	defer a.Close()
	var buf bytes.Buffer
	WriteFrame(&buf, KindRequest, 9, []byte(`{"op":"hello"}`), nil)
	raw := buf.Bytes()
	raw[4] = ProtocolVersion + 1
	go a.Write(raw)
	f, err := ReadFrame(a)
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != 9 || !strings.Contains(string(f.Body), string(CodeVersionMismatch)) {
		t.Fatalf("reply = %s; want version-mismatch for id 9", f.Body)
	}
	_ = io.EOF
}

// countingConn counts completed writes.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return n, err
}

func TestAfterReplyRunsOnceTheReplyIsWritten(t *testing.T) {
	a, b := net.Pipe()
	cc := &countingConn{Conn: b}
	writesSeen := make(chan int, 1)
	srv := &Server{Handler: func(ctx context.Context, r *Request) (any, error) {
		r.AfterReply(func() {
			cc.mu.Lock()
			writesSeen <- cc.writes
			cc.mu.Unlock()
		})
		return ShutdownReply{Synced: true}, nil
	}}
	go srv.ServeConn(context.Background(), cc)
	c := NewClient(a, nil)
	defer c.Close()
	rep, err := c.Shutdown(context.Background(), ShutdownRequest{})
	if err != nil || !rep.Synced {
		t.Fatalf("Shutdown = %+v, %v", rep, err)
	}
	select {
	case n := <-writesSeen:
		if n != 1 {
			t.Fatalf("AfterReply ran after %d writes; want it after the reply frame was written", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AfterReply never ran")
	}
}
