package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
)

// extSuper is what the mount gate reads from an ext2/3/4 superblock (the kernel's struct
// ext4_super_block, fs/ext4/ext4.h).
type extSuper struct {
	HasErrors  bool   // s_state has EXT2_ERROR_FS, or errors were recorded
	ErrorCount uint32 // s_error_count
	FirstFunc  string // s_first_error_func: where the kernel first saw an error
	BadCsum    bool   // metadata_csum is on and the superblock's checksum does not match
}

var errNoExtMagic = errors.New("no ext2/3/4 superblock magic")

// parseExtSuper decodes the 1024-byte superblock found at byte 1024 of the filesystem.
func parseExtSuper(b []byte) (extSuper, error) {
	var s extSuper
	if len(b) < 1024 {
		return s, io.ErrUnexpectedEOF
	}
	le := binary.LittleEndian
	if le.Uint16(b[0x38:]) != 0xEF53 {
		return s, errNoExtMagic
	}
	state := le.Uint16(b[0x3A:])
	s.ErrorCount = le.Uint32(b[0x194:])
	s.HasErrors = state&0x2 != 0 || s.ErrorCount > 0
	s.FirstFunc = string(bytes.TrimRight(b[0x1A8:0x1A8+32], "\x00"))
	const metadataCsum = 0x400 // EXT4_FEATURE_RO_COMPAT_METADATA_CSUM
	if le.Uint32(b[0x64:])&metadataCsum != 0 {
		// The kernel stores crc32c(~0, sb[:0x3FC]) without the final inversion Go applies.
		sum := ^crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[:0x3FC])
		s.BadCsum = sum != le.Uint32(b[0x3FC:])
	}
	return s, nil
}

// readExtSuper reads dev's primary superblock (replaced in tests).
var readExtSuper = func(dev string) (extSuper, error) {
	f, err := os.Open(dev)
	if err != nil {
		return extSuper{}, err
	}
	defer f.Close()
	b := make([]byte, 1024)
	if _, err := f.ReadAt(b, 1024); err != nil {
		return extSuper{}, err
	}
	return parseExtSuper(b)
}
