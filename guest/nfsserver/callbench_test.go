//go:build linux

package nfsserver

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// BenchmarkCall measures the server's cost per call for the procedures the
// kernel client sends most, each over a loopback TCP connection (record
// reading, dispatch, the syscalls, the reply's writev). The client reuses
// its buffers, so allocs/op are the server's. Every reply's status is
// checked, so a benchmark that stops working fails instead of getting fast.
//
//	go test -run '^$' -bench BenchmarkCall -benchmem ./guest/nfsserver/
//	  ... -cpuprofile build/bench/nfsserver-calls.pprof  for a profile
func BenchmarkCall(b *testing.B) {
	root := benchRoot(b)
	if err := os.WriteFile(filepath.Join(root, "f"), make([]byte, 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := os.WriteFile(filepath.Join(root, "d", "entry-"+strconv.Itoa(i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	addr, s := startOurs(b, Options{Root: root, OwnerFromRoot: true, Logf: func(string, ...any) {}})
	fileH, err := s.table.At(s.table.RootFd(), "f")
	if err != nil {
		b.Fatal(err)
	}
	dirH, err := s.table.At(s.table.RootFd(), "d")
	if err != nil {
		b.Fatal(err)
	}
	c := dial(b, addr)
	buf := make([]byte, 2<<20)
	uid := uint32(os.Getuid())
	gid := uint32(os.Getgid())
	// call sends one pre-encoded record and reads its reply into buf; it
	// returns the NFS status.
	call := func(b *testing.B, rec []byte) uint32 {
		if _, err := c.c.Write(rec); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c.br, buf[:4]); err != nil {
			b.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(buf) & 0x7fffffff)
		if _, err := io.ReadFull(c.br, buf[:n]); err != nil {
			b.Fatal(err)
		}
		// xid, REPLY, MSG_ACCEPTED, verifier (flavor, empty body), accept_stat, nfsstat3
		if n < 28 || binary.BigEndian.Uint32(buf[20:]) != 0 {
			b.Fatalf("rpc reply of %d bytes not accepted", n)
		}
		return binary.BigEndian.Uint32(buf[24:])
	}
	rec := func(proc uint32, f func(w *xdr.Writer)) []byte {
		return rpcfront.AppendRecordMark(nil, encodeCall(1, progNFS, 3, proc, uid, gid, args(f)))
	}
	type bench struct {
		name  string
		bytes int
		recs  [][]byte // sent in turn, one op
	}
	data64k := make([]byte, 64<<10)
	benches := []bench{
		{name: "GETATTR", recs: [][]byte{rec(procGetattr, func(w *xdr.Writer) { w.Opaque(fileH) })}},
		{name: "LOOKUP", recs: [][]byte{rec(procLookup, func(w *xdr.Writer) { w.Opaque(dirH); w.String("entry-42") })}},
		{name: "ACCESS", recs: [][]byte{rec(procAccess, func(w *xdr.Writer) { w.Opaque(fileH); w.Uint32(0x3f) })}},
		{name: "READDIRPLUS-100", recs: [][]byte{rec(procReaddirplus, func(w *xdr.Writer) {
			w.Opaque(dirH)
			w.Uint64(0)
			w.Fixed(make([]byte, 8))
			w.Uint32(64 << 10)
			w.Uint32(256 << 10)
		})}},
		{name: "READ-4KiB", bytes: 4 << 10, recs: [][]byte{rec(procRead, func(w *xdr.Writer) { w.Opaque(fileH); w.Uint64(0); w.Uint32(4 << 10) })}},
		{name: "READ-128KiB", bytes: 128 << 10, recs: [][]byte{rec(procRead, func(w *xdr.Writer) { w.Opaque(fileH); w.Uint64(0); w.Uint32(128 << 10) })}},
		{name: "READ-1MiB", bytes: 1 << 20, recs: [][]byte{rec(procRead, func(w *xdr.Writer) { w.Opaque(fileH); w.Uint64(0); w.Uint32(1 << 20) })}},
		{name: "WRITE-64KiB-UNSTABLE", bytes: 64 << 10, recs: [][]byte{rec(procWrite, func(w *xdr.Writer) {
			w.Opaque(fileH)
			w.Uint64(0)
			w.Uint32(64 << 10)
			w.Uint32(unstable)
			w.Opaque(data64k)
		})}},
		{name: "COMMIT", recs: [][]byte{rec(procCommit, func(w *xdr.Writer) { w.Opaque(fileH); w.Uint64(0); w.Uint32(0) })}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			if bb.bytes > 0 {
				b.SetBytes(int64(bb.bytes))
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, r := range bb.recs {
					if st := call(b, r); st != nfsOK {
						b.Fatalf("%s: status %d", bb.name, st)
					}
				}
			}
		})
	}
}

// BenchmarkCallParallel runs GETATTR and READ-4KiB from several connections
// at once: what contention (locks, allocation) costs when the kernel client
// keeps many calls in flight.
func BenchmarkCallParallel(b *testing.B) {
	root := benchRoot(b)
	if err := os.WriteFile(filepath.Join(root, "f"), make([]byte, 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	addr, s := startOurs(b, Options{Root: root, OwnerFromRoot: true, Logf: func(string, ...any) {}})
	fileH, err := s.table.At(s.table.RootFd(), "f")
	if err != nil {
		b.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	for _, p := range []struct {
		name string
		proc uint32
		f    func(w *xdr.Writer)
	}{
		{"GETATTR", procGetattr, func(w *xdr.Writer) { w.Opaque(fileH) }},
		{"READ-4KiB", procRead, func(w *xdr.Writer) { w.Opaque(fileH); w.Uint64(0); w.Uint32(4 << 10) }},
	} {
		b.Run(fmt.Sprintf("%s-conns", p.name), func(b *testing.B) {
			rec := rpcfront.AppendRecordMark(nil, encodeCall(1, progNFS, 3, p.proc, uid, gid, args(p.f)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c := dial(b, addr)
				buf := make([]byte, 64<<10)
				for pb.Next() {
					if _, err := c.c.Write(rec); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(c.br, buf[:4]); err != nil {
						b.Error(err)
						return
					}
					n := int(binary.BigEndian.Uint32(buf) & 0x7fffffff)
					if _, err := io.ReadFull(c.br, buf[:n]); err != nil || binary.BigEndian.Uint32(buf[24:]) != nfsOK {
						b.Errorf("reply of %d bytes: %v", n, err)
						return
					}
				}
			})
		})
	}
}

// benchRoot is a fresh ext4 filesystem, the shape of the guest's export
// (handles resolve without a path check there), or a temporary directory
// when not root.
func benchRoot(b *testing.B) string {
	if os.Geteuid() == 0 {
		return mountExt4(b)
	}
	return b.TempDir()
}
