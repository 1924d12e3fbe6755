package rpcfront

import (
	"bytes"
	"context"
	"testing"
)

type echo struct{}

func (echo) Dispatch(ctx context.Context, c *Call) []byte { return Accepted(c.XID, Success).B }

// FuzzReadRecord: arbitrary byte streams never crash the record reader or
// make it allocate beyond the limit.
func FuzzReadRecord(f *testing.F) {
	f.Add(AppendRecordMark(nil, []byte{0, 0, 0, 1, 0, 0, 0, 0}))
	f.Add([]byte{0x00, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0x80, 0, 0, 1, 9})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			rec, err := ReadRecord(r, 1<<16)
			if err != nil {
				return
			}
			if len(rec) > 1<<16 {
				t.Fatalf("record of %d bytes over the limit", len(rec))
			}
		}
	})
}

// FuzzHandle: arbitrary records through the call parser and auth check.
func FuzzHandle(f *testing.F) {
	s := NewServer(echo{}, Config{Authorize: func(c *Call) uint32 {
		if c.UID == 7 {
			return AuthTooWeak
		}
		return 0
	}})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0x86, 0xa3, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s.Handle(context.Background(), b)
	})
}
