package luksheader

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
)

// LUKS2 binary header layout (all integers big-endian). One header copy is
// the 4 KiB binary header followed by the JSON area, hdr_size bytes in all;
// the secondary copy starts right after the primary.
const (
	luks2BinSize   = 4096
	luks2CsumOff   = 448
	luks2CsumLen   = 64
	luks2MinHdr    = 16 << 10
	luks2MaxHdr    = 4 << 20
	luks2MaxSlots  = 32
	maxSectorSize  = 4096
	minSectorSize  = 512
	maxArgonMemKiB = 4 << 20 // cryptsetup's own ceiling: 4 GiB
)

// secondaryOffsets are where a LUKS2 secondary header may live: every legal
// hdr_size, smallest first (as cryptsetup probes them).
var secondaryOffsets = []int64{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}

// errNoMagic marks a copy that is simply absent, as opposed to damaged.
var errNoMagic = errors.New("no LUKS2 magic")

type luks2Copy struct {
	seqid     uint64
	hdrSize   int64
	label     string
	subsystem string
	uuid      string
	meta      luks2JSON
}

type luks2JSON struct {
	Keyslots map[string]luks2Keyslot `json:"keyslots"`
	Segments map[string]luks2Segment `json:"segments"`
	Digests  map[string]struct {
		Hash string `json:"hash"`
	} `json:"digests"`
	Config struct {
		JSONSize string `json:"json_size"`
	} `json:"config"`
}

type luks2Keyslot struct {
	Type    string `json:"type"`
	KeySize int    `json:"key_size"`
	KDF     struct {
		Type       string `json:"type"`
		Hash       string `json:"hash"`
		Iterations int    `json:"iterations"`
		Time       int    `json:"time"`
		Memory     int    `json:"memory"`
		CPUs       int    `json:"cpus"`
	} `json:"kdf"`
	Area struct {
		Encryption string `json:"encryption"`
	} `json:"area"`
	AF struct {
		Hash string `json:"hash"`
	} `json:"af"`
}

type luks2Segment struct {
	Type       string `json:"type"`
	Offset     string `json:"offset"`
	Encryption string `json:"encryption"`
	SectorSize int    `json:"sector_size"`
	Size       string `json:"size"` // bytes, or "dynamic": to the end of the device
}

// parseLUKS2 reads both header copies and returns the newest valid one.
// primaryMagic says whether offset 0 carries the LUKS magic.
func parseLUKS2(r io.ReaderAt, primaryMagic bool) (*Header, error) {
	var primary *luks2Copy
	var primaryErr error
	if primaryMagic {
		primary, primaryErr = readLUKS2Copy(r, 0, magic1)
	} else {
		primaryErr = errNoMagic
	}

	// Probe the secondary where the primary says it is, else at every legal offset.
	offsets := secondaryOffsets
	if primary != nil {
		offsets = []int64{primary.hdrSize}
	}
	var secondary *luks2Copy
	var secondaryErr error = errNoMagic
	for _, off := range offsets {
		c, err := readLUKS2Copy(r, off, magic2)
		if errors.Is(err, errNoMagic) {
			continue
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			// An I/O error is no verdict on the header: a good primary still wins.
			if primary != nil {
				break
			}
			return nil, err
		}
		secondary, secondaryErr = c, err
		if err == nil {
			break
		}
	}

	switch {
	case primary != nil && (secondary == nil || secondary.seqid <= primary.seqid):
		return primary.header(false, nil)
	case secondary != nil:
		if primary != nil {
			primaryErr = fmt.Errorf("primary header is older than the secondary (seqid %d < %d)", primary.seqid, secondary.seqid)
		} else if errors.Is(primaryErr, errNoMagic) {
			primaryErr = errors.New("primary header magic is missing")
		}
		return secondary.header(true, primaryErr)
	case !primaryMagic && errors.Is(secondaryErr, errNoMagic):
		return nil, ErrNotLUKS
	}
	if primaryErr != nil && !errors.Is(primaryErr, ErrCorrupt) && !errors.Is(primaryErr, errNoMagic) {
		return nil, primaryErr
	}
	return nil, corrupt("both LUKS2 header copies are unusable: primary: %s; secondary: %s", reason(primaryErr), reason(secondaryErr))
}

func reason(err error) string {
	var c *corruptError
	switch {
	case errors.As(err, &c):
		return c.reason
	case errors.Is(err, errNoMagic):
		return "not found"
	default:
		return err.Error()
	}
}

// readLUKS2Copy reads and verifies one header copy at off.
func readLUKS2Copy(r io.ReaderAt, off int64, magic []byte) (*luks2Copy, error) {
	bin := make([]byte, luks2BinSize)
	if n, err := r.ReadAt(bin, off); n < len(bin) {
		if err == io.EOF || err == io.ErrUnexpectedEOF || n > 0 && err == nil {
			if n >= len(magic) && bytes.Equal(bin[:len(magic)], magic) {
				return nil, corrupt("header at offset %d is truncated", off)
			}
			return nil, errNoMagic
		}
		return nil, fmt.Errorf("cannot read LUKS2 header at offset %d: %w", off, err)
	}
	if !bytes.Equal(bin[:6], magic) {
		return nil, errNoMagic
	}
	be := binary.BigEndian
	if v := be.Uint16(bin[6:8]); v != 2 {
		return nil, corrupt("header at offset %d has version %d, want 2", off, v)
	}
	hdrSize := be.Uint64(bin[8:16])
	if hdrSize < luks2MinHdr || hdrSize > luks2MaxHdr || hdrSize&(hdrSize-1) != 0 {
		return nil, corrupt("header at offset %d has invalid size %d", off, hdrSize)
	}
	if ho := be.Uint64(bin[256:264]); ho != uint64(off) {
		return nil, corrupt("header at offset %d claims to be at offset %d", off, ho)
	}
	alg := cstring(bin[72:104])
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	case "sha1":
		h = sha1.New()
	default:
		return nil, corrupt("header at offset %d uses unsupported checksum algorithm %q", off, alg)
	}

	area := make([]byte, hdrSize)
	copy(area, bin)
	if n, err := r.ReadAt(area[luks2BinSize:], off+luks2BinSize); n < len(area)-luks2BinSize {
		if err == io.EOF || err == io.ErrUnexpectedEOF || err == nil {
			return nil, corrupt("header at offset %d is truncated (JSON area needs %d bytes)", off, hdrSize)
		}
		return nil, fmt.Errorf("cannot read LUKS2 metadata at offset %d: %w", off, err)
	}
	var stored [luks2CsumLen]byte
	copy(stored[:], area[luks2CsumOff:luks2CsumOff+luks2CsumLen])
	clear(area[luks2CsumOff : luks2CsumOff+luks2CsumLen])
	h.Write(area)
	if sum := h.Sum(nil); !bytes.Equal(sum, stored[:len(sum)]) {
		return nil, corrupt("checksum mismatch in header at offset %d", off)
	}

	js := area[luks2BinSize:]
	if i := bytes.IndexByte(js, 0); i >= 0 {
		js = js[:i]
	}
	c := &luks2Copy{
		seqid:     be.Uint64(bin[16:24]),
		hdrSize:   int64(hdrSize),
		label:     cstring(bin[24:72]),
		uuid:      cstring(bin[168:208]),
		subsystem: cstring(bin[208:256]),
	}
	if err := json.Unmarshal(js, &c.meta); err != nil {
		return nil, corrupt("metadata JSON at offset %d does not parse: %v", off, err)
	}
	return c, nil
}

// header converts a verified copy into a Header, validating the JSON fields it uses.
func (c *luks2Copy) header(fromSecondary bool, primaryErr error) (*Header, error) {
	h := &Header{
		Version:       2,
		UUID:          c.uuid,
		Label:         c.label,
		Subsystem:     c.subsystem,
		HeaderSize:    c.hdrSize,
		FromSecondary: fromSecondary,
		PrimaryErr:    primaryErr,
	}
	ids, err := sortedIDs(c.meta.Keyslots, luks2MaxSlots)
	if err != nil {
		return nil, corrupt("keyslots: %v", err)
	}
	for _, id := range ids {
		k := c.meta.Keyslots[strconv.Itoa(id)]
		ks := Keyslot{ID: id, Active: k.Type == "luks2", KeySize: k.KeySize}
		d := k.KDF
		if d.Iterations < 0 || d.Time < 0 || d.Memory < 0 || d.CPUs < 0 || k.KeySize < 0 {
			return nil, corrupt("keyslot %d has negative parameters", id)
		}
		switch d.Type {
		case KDFPBKDF2:
			ks.KDF = KDF{Type: d.Type, Hash: d.Hash, Iterations: d.Iterations}
		case KDFArgon2i, KDFArgon2id:
			if d.Memory > maxArgonMemKiB {
				return nil, corrupt("keyslot %d asks for %d KiB of KDF memory, above the 4 GiB maximum", id, d.Memory)
			}
			ks.KDF = KDF{Type: d.Type, Time: d.Time, MemoryKiB: d.Memory, CPUs: d.CPUs}
		default:
			if ks.Active {
				// Well-formed (the checksum matched) but newer than what we know: not damage.
				return nil, unsupported("the key derivation %q (keyslot %d)", d.Type, id)
			}
			ks.KDF = KDF{Type: d.Type}
		}
		if ks.Active {
			ks.AreaCipher, ks.AFHash = k.Area.Encryption, k.AF.Hash
		}
		h.Keyslots = append(h.Keyslots, ks)
		if h.KeySize == 0 && ks.Active {
			h.KeySize = k.KeySize
		}
	}

	for _, id := range mustIDs(c.meta.Digests) {
		if hs := c.meta.Digests[id].Hash; hs != "" {
			h.DigestHashes = append(h.DigestHashes, hs)
		}
	}
	segIDs, err := sortedIDs(c.meta.Segments, 1<<16)
	if err != nil {
		return nil, corrupt("segments: %v", err)
	}
	for _, id := range segIDs {
		s := c.meta.Segments[strconv.Itoa(id)]
		if s.Type != "crypt" {
			continue
		}
		off, err := strconv.ParseInt(s.Offset, 10, 64)
		if err != nil || off < 0 {
			return nil, corrupt("segment %d has invalid offset %q", id, s.Offset)
		}
		if s.SectorSize < minSectorSize || s.SectorSize > maxSectorSize || s.SectorSize&(s.SectorSize-1) != 0 {
			return nil, corrupt("segment %d has invalid sector size %d", id, s.SectorSize)
		}
		h.Cipher, h.PayloadOffset, h.SectorSize = s.Encryption, off, s.SectorSize
		if n, err := strconv.ParseInt(s.Size, 10, 64); err == nil && n > 0 {
			h.DataSize = n
		}
		break
	}
	return h, nil
}

// mustIDs returns m's keys sorted, for maps whose ids need no validation.
func mustIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for k := range m {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	return ids
}

// sortedIDs returns the numeric keys of m in order, rejecting non-numeric or out-of-range ones.
func sortedIDs[V any](m map[string]V, limit int) ([]int, error) {
	ids := make([]int, 0, len(m))
	for k := range m {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 || id >= limit || strconv.Itoa(id) != k {
			return nil, fmt.Errorf("invalid id %q", k)
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids, nil
}
