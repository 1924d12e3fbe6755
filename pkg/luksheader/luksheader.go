// Package luksheader reads LUKS1 and LUKS2 headers, and ext2/3/4 superblocks,
// in pure Go without unlocking anything. The host uses it to size the VM from
// the keyslots' KDF memory cost and to describe drives in `luksmount list`.
//
// Only public header fields are read: no key material is ever touched.
package luksheader

//go:generate testdata/gen.sh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrNotLUKS means no LUKS magic was found at the start of the target
	// (nor a LUKS2 secondary header at any of its standard offsets).
	ErrNotLUKS = errors.New("not a LUKS device (no LUKS header magic)")
	// ErrCorrupt means a LUKS magic was found but no usable header could be
	// read: bad checksum, unparsable metadata, or both LUKS2 copies damaged.
	ErrCorrupt = errors.New("LUKS header is corrupt")
)

// corruptError carries the reason behind ErrCorrupt.
type corruptError struct{ reason string }

func (e *corruptError) Error() string {
	return "LUKS header is corrupt: " + e.reason + " (check the drive with `cryptsetup luksDump` or restore a header backup)"
}
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(format string, a ...any) error {
	return &corruptError{reason: fmt.Sprintf(format, a...)}
}

// KDF types as they appear in LUKS2 metadata; LUKS1 keyslots are always KDFPBKDF2.
const (
	KDFPBKDF2   = "pbkdf2"
	KDFArgon2i  = "argon2i"
	KDFArgon2id = "argon2id"
)

// KDF is a keyslot's key-derivation parameters.
type KDF struct {
	Type       string // KDFPBKDF2, KDFArgon2i or KDFArgon2id
	Hash       string // pbkdf2 only, e.g. "sha256"
	Iterations int    // pbkdf2 only
	Time       int    // argon2 only: iterations (time cost)
	MemoryKiB  int    // argon2 only: memory cost in KiB
	CPUs       int    // argon2 only: parallel lanes
}

// Keyslot is one keyslot. LUKS1 has eight fixed slots, inactive ones
// included; LUKS2 lists only the slots that exist, all of them active.
type Keyslot struct {
	ID      int
	Active  bool
	KeySize int // bytes of the volume key this slot unlocks
	KDF     KDF
	// LUKS2 only: the keyslot area's cipher and the AF splitter's hash.
	AreaCipher string
	AFHash     string
}

// Header is the parsed, public part of a LUKS header.
type Header struct {
	Version       int    // 1 or 2
	UUID          string // as stored, e.g. "2b3c...-..."
	Label         string // LUKS2 only
	Subsystem     string // LUKS2 only
	Cipher        string // e.g. "aes-xts-plain64"
	KeySize       int    // volume key size in bytes
	SectorSize    int    // encryption sector size in bytes (LUKS1: 512)
	PayloadOffset int64  // bytes from the start of the device to the encrypted data
	DataSize      int64  // LUKS2: the data segment's fixed size in bytes (0 = to the device's end)
	HeaderSize    int64  // LUKS2: size of one header copy (binary + JSON); LUKS1: 592
	Keyslots      []Keyslot
	// DigestHashes are the LUKS2 digests' hashes; LUKS1's one hash is HashSpec.
	DigestHashes []string
	HashSpec     string // LUKS1 only: the header's hash (PBKDF2, AF splitter, digest)
	// FromSecondary is true when the primary LUKS2 header was damaged, or
	// older than the secondary, and the secondary copy was used.
	FromSecondary bool
	// PrimaryErr says what was wrong with the primary copy when FromSecondary is set.
	PrimaryErr error
}

// MaxKDFMemoryKiB returns the largest memory cost of any active keyslot, in
// KiB; 0 when every active keyslot uses pbkdf2. Unlocking needs about this
// much RAM in the VM.
func (h *Header) MaxKDFMemoryKiB() int {
	max := 0
	for _, k := range h.Keyslots {
		if k.Active && k.KDF.MemoryKiB > max {
			max = k.KDF.MemoryKiB
		}
	}
	return max
}

// ActiveKeyslots returns the keyslots that hold a key.
func (h *Header) ActiveKeyslots() []Keyslot {
	var out []Keyslot
	for _, k := range h.Keyslots {
		if k.Active {
			out = append(out, k)
		}
	}
	return out
}

var (
	magic1 = []byte{'L', 'U', 'K', 'S', 0xba, 0xbe}
	magic2 = []byte{'S', 'K', 'U', 'L', 0xba, 0xbe}
)

// Parse reads the LUKS header at the start of r. It returns ErrNotLUKS when
// there is no LUKS magic and an error matching ErrCorrupt when there is one
// but no usable header.
func Parse(r io.ReaderAt) (*Header, error) {
	var pre [8]byte
	n, err := r.ReadAt(pre[:], 0)
	if n < len(pre) {
		if err == nil || errors.Is(err, io.EOF) {
			// Too short to hold a primary; a LUKS2 secondary cannot exist either.
			return nil, ErrNotLUKS
		}
		return nil, fmt.Errorf("cannot read header: %w", err)
	}
	if !bytes.Equal(pre[:6], magic1) {
		// The primary may have been wiped: look for a LUKS2 secondary copy.
		return parseLUKS2(r, false)
	}
	switch v := int(pre[6])<<8 | int(pre[7]); v {
	case 1:
		return parseLUKS1(r)
	case 2:
		return parseLUKS2(r, true)
	default:
		return nil, unsupported("LUKS version %d", v)
	}
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
