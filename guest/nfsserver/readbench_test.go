//go:build linux

package nfsserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
)

// BenchmarkRead measures one READ call through the whole server (parse,
// dispatch, cached fd, pread into the reply), without the network: the
// server's own cost per call, and its allocations.
func BenchmarkRead(b *testing.B) {
	root := b.TempDir()
	data := make([]byte, maxIO)
	if err := os.WriteFile(filepath.Join(root, "f"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Root: root, Logf: func(string, ...any) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h, err := s.table.At(s.table.RootFd(), "f")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []uint32{4 << 10, 128 << 10, maxIO} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			rec := encodeCall(1, progNFS, 3, procRead, 0, 0, args(func(w *xdr.Writer) { w.Opaque(h); w.Uint64(0); w.Uint32(size) }))
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if rep := s.rpc.Handle(ctx, rec); len(rep) < int(size) {
					b.Fatalf("short reply: %d bytes", len(rep))
				}
			}
		})
	}
}

// BenchmarkReadTCP is BenchmarkRead over a loopback TCP connection, reply
// sending included; the client reuses one buffer, so the allocations
// reported are the server's.
func BenchmarkReadTCP(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), make([]byte, maxIO), 0o644); err != nil {
		b.Fatal(err)
	}
	addr, s := startOurs(b, Options{Root: root, Logf: func(string, ...any) {}})
	h, err := s.table.At(s.table.RootFd(), "f")
	if err != nil {
		b.Fatal(err)
	}
	c := dial(b, addr)
	buf := make([]byte, maxIO+4096)
	for _, size := range []uint32{4 << 10, maxIO} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			rec := rpcfront.AppendRecordMark(nil, encodeCall(1, progNFS, 3, procRead, 0, 0, args(func(w *xdr.Writer) { w.Opaque(h); w.Uint64(0); w.Uint32(size) })))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.c.Write(rec); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c.br, buf[:4]); err != nil {
					b.Fatal(err)
				}
				n := int(binary.BigEndian.Uint32(buf) & 0x7fffffff)
				if _, err := io.ReadFull(c.br, buf[:n]); err != nil || n < int(size) {
					b.Fatalf("reply of %d bytes: %v", n, err)
				}
			}
		})
	}
}
