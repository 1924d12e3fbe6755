//go:build linux

package loopback

import (
	"context"
	"testing"
	"time"
)

func TestParallelBothServers(t *testing.T) {
	res, err := Parallel(context.Background(), ParallelConfig{Dir: t.TempDir(), Size: 8<<20 + 5, Req: 1 << 20, Depths: []int{1, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 8 {
		t.Fatalf("got %d results, want 8 (2 servers x 2 depths x write/read)", len(res))
	}
	for _, r := range res {
		if r.Bytes != 8<<20+5 || r.MBps <= 0 || r.Server == "" {
			t.Errorf("implausible %+v", r)
		}
	}
}

func TestScaleAndList(t *testing.T) {
	root := t.TempDir()
	if err := Populate(root, 3, 200); err != nil {
		t.Fatal(err)
	}
	for _, start := range []func(string) (*Server, error){
		func(r string) (*Server, error) { return StartStock(r, 1000) }, StartOurs,
	} {
		s, err := start(root)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Scale(s, 500, 200, 50, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if r.LookedUp != 501 || r.Asked != 500 || r.P50us <= 0 || r.P99us < r.P50us {
			t.Errorf("%s: implausible %+v", s.Name, r)
		}
		l, err := List(s, "d1", 200, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if l.Calls < 1 {
			t.Errorf("%s: %+v", s.Name, l)
		}
		if _, err := List(s, "d2", 201, time.Minute); err == nil {
			t.Errorf("%s: a wrong entry count was not reported", s.Name)
		}
		s.Close()
	}
}
