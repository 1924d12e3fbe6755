package luksheader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Kind is what a probe found at the start of a device.
type Kind int

// Kinds Detect can report.
const (
	KindUnknown Kind = iota
	KindLUKS1
	KindLUKS2
	KindExt2
	KindExt3
	KindExt4
)

func (k Kind) String() string {
	switch k {
	case KindLUKS1:
		return "luks1"
	case KindLUKS2:
		return "luks2"
	case KindExt2:
		return "ext2"
	case KindExt3:
		return "ext3"
	case KindExt4:
		return "ext4"
	default:
		return "unknown"
	}
}

// IsLUKS reports whether k is a LUKS version.
func (k Kind) IsLUKS() bool { return k == KindLUKS1 || k == KindLUKS2 }

// IsExt reports whether k is an ext2/3/4 file system.
func (k Kind) IsExt() bool { return k == KindExt2 || k == KindExt3 || k == KindExt4 }

// Identity is what Identify found: the kind plus its label and UUID, and the
// full header for LUKS.
type Identity struct {
	Kind  Kind
	Label string
	UUID  string
	LUKS  *Header // set for LUKS kinds
	// Err is set when a LUKS magic was present but the header is corrupt
	// (Kind is then the version the magic claims, LUKS is nil), or intact but
	// naming what the guest cannot use (matching ErrUnsupported; LUKS is set
	// when the header parsed).
	Err error
}

// Detect tells LUKS1, LUKS2, ext2/3/4 or unknown apart. A corrupt LUKS header
// is reported as its kind together with an error matching ErrCorrupt, an
// unsupported one with an error matching ErrUnsupported.
func Detect(r io.ReaderAt) (Kind, error) {
	id, err := Identify(r)
	if err != nil {
		return KindUnknown, err
	}
	return id.Kind, id.Err
}

// Identify probes r for a LUKS header or an ext superblock. It returns an
// error only for I/O failures; "nothing recognised" is KindUnknown.
func Identify(r io.ReaderAt) (*Identity, error) {
	h, err := Parse(r)
	switch {
	case err == nil:
		k := KindLUKS2
		if h.Version == 1 {
			k = KindLUKS1
		}
		return &Identity{Kind: k, Label: h.Label, UUID: h.UUID, LUKS: h, Err: h.CheckSupported()}, nil
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrUnsupported):
		var pre [8]byte
		r.ReadAt(pre[:], 0)
		k := KindLUKS2
		if pre[7] == 1 && pre[6] == 0 {
			k = KindLUKS1
		}
		return &Identity{Kind: k, Err: err}, nil
	case !errors.Is(err, ErrNotLUKS):
		return nil, err
	}
	return identifyExt(r)
}

// ext superblock: 1024 bytes at offset 1024, little-endian.
const (
	extSuperOff = 1024
	extMagic    = 0xEF53

	extCompatHasJournal = 0x4

	extIncompatJournalDev = 0x8
	// Features ext3 never had; any of them makes it ext4.
	extIncompatExt4 = 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000 | 0x8000 | 0x10000 | 0x20000
	extROCompatExt4 = 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000 | 0x4000 | 0x8000
)

func identifyExt(r io.ReaderAt) (*Identity, error) {
	sb := make([]byte, 1024)
	if n, err := r.ReadAt(sb, extSuperOff); n < len(sb) {
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			return &Identity{Kind: KindUnknown}, nil
		}
		return nil, fmt.Errorf("cannot read superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[56:58]) != extMagic {
		return &Identity{Kind: KindUnknown}, nil
	}
	compat, incompat, rocompat := le.Uint32(sb[92:96]), le.Uint32(sb[96:100]), le.Uint32(sb[100:104])
	id := &Identity{Kind: KindExt2, Label: cstring(sb[120:136]), UUID: formatUUID(sb[104:120])}
	switch {
	case incompat&extIncompatJournalDev != 0:
		id.Kind = KindUnknown // an external journal device holds no files
	case incompat&extIncompatExt4 != 0 || rocompat&extROCompatExt4 != 0:
		id.Kind = KindExt4
	case compat&extCompatHasJournal != 0:
		id.Kind = KindExt3
	}
	return id, nil
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
