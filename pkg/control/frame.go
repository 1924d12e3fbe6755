// Package control is the host<->agent control protocol: versioned, length-prefixed frames over any
// byte stream (virtio-serial, vsock, a unix socket in tests).
//
// A frame is, big-endian:
//
//	u32 length of everything after this field
//	u8  protocol version (ProtocolVersion)
//	u8  kind (request, response, event)
//	u16 reserved, zero
//	u32 id (request id; a response carries its request's id; events use 0)
//	u32 length of the JSON body
//	JSON body
//	secret bytes (the rest of the frame; only Unlock and Format carry one)
//
// Secrets travel outside the JSON so both sides can hold them in one buffer and zero it after use.
package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the frame format and message set version. Both sides refuse other versions.
const ProtocolVersion = 1

// PortName is the virtio-serial port name the agent listens on.
const PortName = "org.luksmount.agent"

// VsockPort is the AF_VSOCK port the agent listens on where the VM has a vsock device.
const VsockPort = 4711

// MaxFrame bounds a frame so a corrupt length can't make either side allocate without limit.
// Key files may be up to 8 MiB (cryptsetup's default keyfile size limit).
const MaxFrame = 9 << 20

const headerLen = 12 // after the length field

// Kind says what a frame carries.
type Kind uint8

// Frame kinds.
const (
	KindRequest  Kind = 1
	KindResponse Kind = 2
	KindEvent    Kind = 3
)

// ErrVersion reports a peer that speaks another protocol version.
var ErrVersion = errors.New("control: peer speaks another protocol version")

// Frame is one decoded frame. Body and Secret alias buf; call Wipe when done with a secret.
type Frame struct {
	Kind   Kind
	ID     uint32
	Body   []byte
	Secret []byte
	buf    []byte
}

// Wipe zeroes the frame's whole buffer, secret included.
func (f *Frame) Wipe() {
	clear(f.buf)
	f.Body, f.Secret = nil, nil
}

// WriteFrame writes one frame in a single Write call so concurrent writers only need one lock.
// The temporary buffer holding the secret is zeroed before returning.
func WriteFrame(w io.Writer, kind Kind, id uint32, body, secret []byte) error {
	n := headerLen + len(body) + len(secret)
	if n > MaxFrame {
		return fmt.Errorf("control: frame of %d bytes exceeds the %d-byte limit", n, MaxFrame)
	}
	buf := make([]byte, 4+n)
	defer clear(buf)
	binary.BigEndian.PutUint32(buf[0:], uint32(n))
	buf[4] = ProtocolVersion
	buf[5] = byte(kind)
	binary.BigEndian.PutUint32(buf[8:], id)
	binary.BigEndian.PutUint32(buf[12:], uint32(len(body)))
	copy(buf[16:], body)
	copy(buf[16+len(body):], secret)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame. A frame with another protocol version is consumed and reported as
// ErrVersion (with its kind and id filled in) so the reader can answer it.
func ReadFrame(r io.Reader) (*Frame, error) {
	var lenb [4]byte
	if _, err := io.ReadFull(r, lenb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenb[:])
	if n < headerLen || n > MaxFrame {
		return nil, fmt.Errorf("control: bad frame length %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		clear(buf)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	f := &Frame{Kind: Kind(buf[1]), ID: binary.BigEndian.Uint32(buf[4:]), buf: buf}
	if buf[0] != ProtocolVersion {
		clear(buf)
		return f, fmt.Errorf("%w (got %d, want %d)", ErrVersion, buf[0], ProtocolVersion)
	}
	bl := binary.BigEndian.Uint32(buf[8:])
	if uint64(bl) > uint64(n-headerLen) {
		clear(buf)
		return nil, fmt.Errorf("control: body length %d overruns frame of %d bytes", bl, n)
	}
	f.Body = buf[headerLen : headerLen+bl]
	if rest := buf[headerLen+bl:]; len(rest) > 0 {
		f.Secret = rest
	}
	return f, nil
}
