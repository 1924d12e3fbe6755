// Package xdr encodes and decodes the XDR (RFC 4506) subset that ONC RPC and
// NFSv3 use. Decoding never panics and never allocates more than the input
// holds: a short or malformed buffer sets a sticky error.
package xdr

import (
	"encoding/binary"
	"errors"
)

// ErrShort means the input ended before the value did, or a length was out of range.
var ErrShort = errors.New("xdr: truncated or malformed input")

// Reader decodes from a byte slice. The first error sticks; later reads return zero values.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader decodes b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err reports the first decoding error.
func (r *Reader) Err() error { return r.err }

// Remaining returns the bytes not yet decoded.
func (r *Reader) Remaining() []byte {
	if r.err != nil {
		return nil
	}
	return r.b[r.off:]
}

// Offset is the number of bytes consumed.
func (r *Reader) Offset() int { return r.off }

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = ErrShort
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

// Uint32 decodes an unsigned int.
func (r *Reader) Uint32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

// Uint64 decodes an unsigned hyper.
func (r *Reader) Uint64() uint64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Bool decodes a bool.
func (r *Reader) Bool() bool { return r.Uint32() != 0 }

// Fixed returns n bytes plus padding (aliasing the input).
func (r *Reader) Fixed(n int) []byte {
	p := r.take(n)
	r.take(pad(n))
	if r.err != nil {
		return nil
	}
	return p
}

// Opaque decodes variable-length opaque data of at most max bytes (aliasing the input).
func (r *Reader) Opaque(max int) []byte {
	n := r.Uint32()
	if r.err != nil {
		return nil
	}
	if n > uint32(max) {
		r.err = ErrShort
		return nil
	}
	return r.Fixed(int(n))
}

// String decodes a string of at most max bytes.
func (r *Reader) String(max int) string { return string(r.Opaque(max)) }

func pad(n int) int { return (4 - n%4) % 4 }

// Writer appends XDR values to a byte slice.
type Writer struct{ B []byte }

// Uint32 appends an unsigned int.
func (w *Writer) Uint32(v uint32) { w.B = binary.BigEndian.AppendUint32(w.B, v) }

// Uint64 appends an unsigned hyper.
func (w *Writer) Uint64(v uint64) { w.B = binary.BigEndian.AppendUint64(w.B, v) }

// Bool appends a bool.
func (w *Writer) Bool(v bool) {
	if v {
		w.Uint32(1)
	} else {
		w.Uint32(0)
	}
}

// Opaque appends variable-length opaque data.
func (w *Writer) Opaque(p []byte) {
	w.Uint32(uint32(len(p)))
	w.Fixed(p)
}

// Fixed appends p plus padding.
func (w *Writer) Fixed(p []byte) {
	w.B = append(w.B, p...)
	w.B = append(w.B, make([]byte, pad(len(p)))...)
}

// String appends a string.
func (w *Writer) String(s string) {
	w.Uint32(uint32(len(s)))
	w.B = append(w.B, s...)
	w.B = append(w.B, make([]byte, pad(len(s)))...)
}
