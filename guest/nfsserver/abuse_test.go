//go:build linux

package nfsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// memoryBound is what the package doc promises clients can make the server
// hold: every connection's own budget and read buffer.
const memoryBound = rpcfront.DefaultMaxConns * (rpcfront.DefaultConnMemory + 64<<10)

// Misbehaving clients (issue 11 point 7): a flood of idle connections,
// records of the maximum size, half-sent records and clients that never
// read their READ replies, all at once, must keep the server's live heap
// within memoryBound (plus slack for the runtime and this test's own
// clients) and must not starve a legitimate client, whose calls keep
// being answered throughout. Half-sent records lose their connection
// after RecordTimeout.
func TestMisbehavingClients(t *testing.T) {
	root := t.TempDir()
	big := make([]byte, maxIO)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(root, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	const timeout = 3 * time.Second
	testHookRPCConfig = func(c *rpcfront.Config) { c.RecordTimeout, c.WriteTimeout = timeout, timeout }
	defer func() { testHookRPCConfig = nil }()
	addr, _ := startOurs(t, Options{Root: root, Logf: func(string, ...any) {}})
	legit := dial(t, addr)
	rootH := legit.mount()
	_, bigH, _ := legit.lookup(rootH, "big")
	readArgs := func(count uint32) []byte {
		return args(func(w *xdr.Writer) { w.Opaque(bigH); w.Uint64(0); w.Uint32(count) })
	}

	// The heap the last collection found live (runtime/metrics): HeapAlloc after runtime.GC
	// would also count what the abusers made the server allocate since, which grows with how
	// long the collection took, so with the machine's load, not with what the server holds.
	liveHeap := func() uint64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := liveHeap()
	stop := make(chan struct{})
	var peak, peakRSS atomic.Uint64
	baseRSS := rss()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the sampler
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if h := liveHeap(); h > peak.Load() {
				peak.Store(h)
			}
			if r := rss(); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
		}
	}()

	// The legitimate client: GETATTR and a 64 KiB READ, again and again.
	var calls atomic.Int64
	var worst atomic.Int64
	legitErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for xid := uint32(1000); ; xid++ {
			select {
			case <-stop:
				legitErr <- nil
				return
			default:
			}
			t0 := time.Now()
			for _, call := range [][]byte{
				encodeCall(xid, progNFS, 3, procGetattr, 0, 0, args(func(w *xdr.Writer) { w.Opaque(bigH) })),
				encodeCall(xid, progNFS, 3, procRead, 0, 0, readArgs(64<<10)),
			} {
				if _, err := legit.c.Write(rpcfront.AppendRecordMark(nil, call)); err != nil {
					legitErr <- err
					return
				}
				legit.c.SetReadDeadline(time.Now().Add(20 * time.Second))
				rec, err := rpcfront.ReadRecord(legit.br, 4<<20)
				if err != nil {
					legitErr <- err
					return
				}
				if be32(rec[:4]) != xid || be32(rec[24:28]) != nfsOK {
					legitErr <- errors.New("legitimate call failed")
					return
				}
			}
			calls.Add(1)
			if d := int64(time.Since(t0)); d > worst.Load() {
				worst.Store(d)
			}
		}
	}()

	var abusers []net.Conn
	open := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		abusers = append(abusers, c)
		return c
	}
	defer func() {
		for _, c := range abusers {
			c.Close()
		}
	}()
	// Half-sent records: a maximum-size record mark and half its bytes.
	junk := make([]byte, maxRecord)
	var halves []net.Conn
	for i := 0; i < 6; i++ {
		c := open()
		binary.BigEndian.PutUint32(junk, uint32(maxRecord)|0x80000000)
		c.Write(junk[:maxRecord/2])
		halves = append(halves, c)
	}
	// Slow readers: 64 READs of 1 MiB pipelined, replies never read.
	for i := 0; i < 6; i++ {
		c := open()
		go func() {
			for x := uint32(0); x < 64; x++ {
				if _, err := c.Write(rpcfront.AppendRecordMark(nil, encodeCall(x, progNFS, 3, procRead, 0, 0, readArgs(maxIO)))); err != nil {
					return
				}
			}
		}()
	}
	// Records of the maximum size, sent as fast as the server takes them:
	// NULL calls padded with junk to maxRecord.
	for i := 0; i < 2; i++ {
		c := open()
		rec := append(rpcfront.AppendRecordMark(nil, encodeCall(1, progNFS, 3, procNull, 0, 0, nil)), make([]byte, maxRecord-64)...)
		binary.BigEndian.PutUint32(rec, uint32(len(rec)-4)|0x80000000)
		go func() {
			for {
				if _, err := c.Write(rec); err != nil {
					return
				}
			}
		}()
		go io.Copy(io.Discard, c)
	}
	// A flood of connections that send nothing.
	for i := 0; i < 40; i++ {
		open()
	}

	time.Sleep(2 * timeout)
	close(stop)
	wg.Wait()
	if err := <-legitErr; err != nil {
		t.Fatalf("the legitimate client failed during the abuse: %v", err)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("live heap %d MiB before, peak %d MiB during the abuse (+%d MiB; bound %d MiB); process RSS %d -> peak %d MiB (this test's clients included; the heap may reach twice its live size between collections); legitimate client: %d rounds, slowest %v",
		base>>20, peak.Load()>>20, grew>>20, memoryBound>>20, baseRSS>>20, peakRSS.Load()>>20, calls.Load(), time.Duration(worst.Load()).Round(time.Millisecond))
	const slack = 16 << 20 // runtime, fd cache, this test's own clients
	if grew > memoryBound+slack {
		t.Errorf("live heap grew by %d MiB under abuse, past the stated bound of %d MiB", grew>>20, memoryBound>>20)
	}
	if calls.Load() < 5 {
		t.Errorf("the legitimate client finished only %d rounds in %v: starved", calls.Load(), 2*timeout)
	}
	if w := time.Duration(worst.Load()); w > timeout {
		t.Errorf("a legitimate round took %v, as long as a client timeout: starved", w)
	}
	for i, c := range halves {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := bufio.NewReader(c).ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("half-sent record %d: connection still open after %v (%v)", i, 2*timeout, err)
		}
	}
}

// rss is this process's resident set size (VmRSS in /proc/self/status), for the log.
func rss() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
