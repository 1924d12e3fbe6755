// Package rpcfront is an ONC RPC (RFC 5531) front end over TCP: it reads
// record-marked calls, checks credentials, runs the calls of one connection in
// parallel (replies may go out of order by XID; an Orderer keeps calls on
// one key in arrival order), turns panics into SYSTEM_ERR
// replies, and hands each call to a Dispatcher.
package rpcfront

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrRecordTooLarge means a client announced a record larger than the server accepts.
var ErrRecordTooLarge = errors.New("rpc record too large")

// ReadRecord reads one record (all its fragments) of at most max bytes.
func ReadRecord(r io.Reader, max int) ([]byte, error) {
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
		// Grow in steps so a lying length cannot make us allocate up front.
		start := len(rec)
		for len(rec) < start+n {
			chunk := min(start+n-len(rec), 64<<10)
			rec = append(rec, make([]byte, chunk)...)
			if _, err := io.ReadFull(r, rec[len(rec)-chunk:]); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
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
