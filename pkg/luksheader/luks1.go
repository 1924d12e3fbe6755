package luksheader

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// LUKS1 on-disk layout (all integers big-endian).
const (
	luks1HeaderSize  = 592
	luks1SectorSize  = 512
	luks1NumKeys     = 8
	luks1KeyslotOff  = 208
	luks1KeyslotSize = 48
	luks1KeyEnabled  = 0x00AC71F3
	luks1KeyDisabled = 0x0000DEAD
	luks1MaxKeyBytes = 512
)

func parseLUKS1(r io.ReaderAt) (*Header, error) {
	b := make([]byte, luks1HeaderSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, corrupt("LUKS1 header truncated (device shorter than %d bytes)", luks1HeaderSize)
		}
		return nil, fmt.Errorf("cannot read LUKS1 header: %w", err)
	}
	be := binary.BigEndian
	cipherName := cstring(b[8:40])
	cipherMode := cstring(b[40:72])
	hashSpec := cstring(b[72:104])
	payload := be.Uint32(b[104:108])
	keyBytes := be.Uint32(b[108:112])
	if cipherName == "" || cipherMode == "" || hashSpec == "" || !printable(cipherName+cipherMode+hashSpec) {
		return nil, corrupt("LUKS1 cipher or hash name is empty or not text")
	}
	if keyBytes == 0 || keyBytes > luks1MaxKeyBytes {
		return nil, corrupt("LUKS1 key size %d bytes is out of range", keyBytes)
	}
	h := &Header{
		Version:       1,
		UUID:          cstring(b[168:208]),
		Cipher:        cipherName + "-" + cipherMode,
		KeySize:       int(keyBytes),
		SectorSize:    luks1SectorSize,
		PayloadOffset: int64(payload) * luks1SectorSize,
		HeaderSize:    luks1HeaderSize,
		HashSpec:      hashSpec,
	}
	for i := 0; i < luks1NumKeys; i++ {
		s := b[luks1KeyslotOff+i*luks1KeyslotSize:]
		state := be.Uint32(s[0:4])
		if state != luks1KeyEnabled && state != luks1KeyDisabled {
			return nil, corrupt("LUKS1 keyslot %d has invalid state 0x%08x", i, state)
		}
		ks := Keyslot{ID: i, Active: state == luks1KeyEnabled, KeySize: int(keyBytes)}
		if ks.Active {
			ks.KDF = KDF{Type: KDFPBKDF2, Hash: hashSpec, Iterations: int(be.Uint32(s[4:8]))}
		}
		h.Keyslots = append(h.Keyslots, ks)
	}
	return h, nil
}

// printable reports whether s is non-control ASCII, as cipher and hash names are.
func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) < 0
}
