package agent

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/timeline"
)

func TestServeProfile(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tl := timeline.New(nil)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveProfile(c, tl)
		}
	}()
	for _, kind := range []string{"cpu", "heap", "nonsense"} {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(kind + "\n"))
		if kind == "cpu" {
			for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
			}
		}
		c.(*net.TCPConn).CloseWrite()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		// pprof profiles are gzip'd protobuf.
		gz := bytes.HasPrefix(b, []byte{0x1f, 0x8b})
		if gz != (kind != "nonsense") {
			t.Errorf("%s: %d bytes, gzip %v", kind, len(b), gz)
		}
	}
}
