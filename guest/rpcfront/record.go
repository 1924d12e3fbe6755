// Package rpcfront is an ONC RPC (RFC 5531) front end over TCP: it reads
// record-marked calls, checks credentials, runs the calls of one connection
// in parallel (replies may go out of order by XID; an Orderer keeps calls on
// one key in arrival order), turns panics into SYSTEM_ERR replies, and hands
// each call to a Dispatcher.
//
// What a client can make it hold is bounded (Config, defaults in limits.go):
//   - at most MaxConns connections (16); a newcomer at the cap replaces a
//     connection that never made a call or has been idle for a second, and
//     is refused if there is none, so a client in use is never cut off;
//   - at most MaxInFlight calls per connection (32);
//   - records of at most MaxRecord bytes;
//   - per connection, ConnMemory bytes (4 MiB) of records being read, calls
//     in flight and replies not yet written: a record's bytes are taken
//     before they are allocated and a reply's room (ReplySizer) before its
//     call runs, so a client sending faster than it reads is slowed by TCP;
//   - a record that has begun must arrive within RecordTimeout (30 s) per
//     fragment, and a reply must be taken within WriteTimeout (30 s), or
//     the connection is closed.
//
// So memory held for clients stays under MaxConns × (ConnMemory + 64 KiB),
// 65 MiB by default, and no connection can use another's share.
package rpcfront

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrRecordTooLarge means a client announced a record larger than the server accepts.
var ErrRecordTooLarge = errors.New("rpc record too large")

// ReadRecord reads one record (all its fragments) of at most max bytes.
func ReadRecord(r io.Reader, max int) ([]byte, error) {
	return readFragments(r, max, func(int) error { return nil })
}

// readFragments reads one record, calling room with each fragment's length
// (checked against max) before allocating it; an error from room stops.
func readFragments(r io.Reader, max int, room func(n int) error) ([]byte, error) {
	var rec []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(rec) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		v := binary.BigEndian.Uint32(hdr[:])
		n := int(v & 0x7fffffff)
		if len(rec)+n > max {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrRecordTooLarge, max)
		}
		if err := room(n); err != nil {
			return nil, err
		}
		start := len(rec)
		if rec == nil {
			rec = GetBuffer(n)
		}
		rec = slices.Grow(rec, n)[:start+n]
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if v&0x80000000 != 0 {
			return rec, nil
		}
	}
}

// AppendRecordMark prefixes msg with a last-fragment record mark.
func AppendRecordMark(dst, msg []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg))|0x80000000)
	return append(dst, msg...)
}
