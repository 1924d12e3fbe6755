package vm

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves one connection: greeting, a reply to qmp_capabilities, then the given lines.
func fakeQMP(t *testing.T, lines ...string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		r := bufio.NewReader(c)
		if l, _ := r.ReadString('\n'); !strings.Contains(l, "qmp_capabilities") {
			return
		}
		c.Write([]byte(`{"return": {}}` + "\n"))
		for _, l := range lines {
			c.Write([]byte(l + "\n"))
		}
	}()
	return sock
}

func TestWatchEventsDecodesBlockIOError(t *testing.T) {
	sock := fakeQMP(t,
		`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BLOCK_IO_ERROR", "data": {"device": "", "nospace": false, "node-name": "disk0", "reason": "Input/output error", "operation": "write", "action": "report"}}`,
		`{"event": "RESUME"}`)
	got := make(chan QMPEvent, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go watchEvents(ctx, sock, func(e QMPEvent) { got <- e }, t.Logf)
	e := <-got
	b, ok := e.IOError()
	if !ok || b.NodeName != "disk0" || b.Operation != "write" || b.Reason != "Input/output error" || b.Action != "report" {
		t.Fatalf("decoded %+v (ok=%v) from %s", b, ok, e.Data)
	}
	if s := b.String(); !strings.Contains(s, "write error on disk0: Input/output error") {
		t.Fatalf("log line %q", s)
	}
	if e := <-got; e.Name != "RESUME" {
		t.Fatalf("second event %q", e.Name)
	}
	if _, ok := (QMPEvent{Name: "RESUME"}).IOError(); ok {
		t.Fatal("RESUME decoded as an I/O error")
	}
}

func TestQMPCallSendsArgumentsAndReportsErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 2)
	go func() {
		c, _ := ln.Accept()
		defer c.Close()
		c.Write([]byte(`{"QMP": {}}` + "\n"))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		c.Write([]byte(`{"return": {}}` + "\n"))
		l, _ := r.ReadString('\n')
		seen <- l
		c.Write([]byte(`{"event": "X"}` + "\n" + `{"error": {"class": "GenericError", "desc": "no node"}}` + "\n"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = qmpCall(ctx, sock, "blockdev-del", map[string]any{"node-name": "disk0-unplugged"})
	if err == nil || !strings.Contains(err.Error(), "no node") {
		t.Fatalf("want the QMP error, got %v", err)
	}
	if l := <-seen; !strings.Contains(l, `"arguments":{"node-name":"disk0-unplugged"}`) {
		t.Fatalf("sent %s", l)
	}
}
