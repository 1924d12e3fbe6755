// Package tcryptfix writes VeraCrypt and TrueCrypt volumes for tests, from the publicly documented
// volume format (veracrypt.fr, "VeraCrypt Volume Format Specification"): no tool on Debian can
// create one (cryptsetup opens tcrypt volumes but cannot format them). Only what the tests need:
// AES-XTS, PBKDF2-HMAC-SHA512, a normal volume and optionally a hidden one, keyfiles. Nothing
// here ships.
package tcryptfix

import (
	"crypto/aes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"golang.org/x/crypto/xts"
)

// Documented layout: the standard header at 0, the hidden volume's header at 64 KiB, the data
// area from 128 KiB, backup headers in the last 128 KiB.
const (
	sectorSize   = 512
	headerSize   = 512
	hiddenOffset = 64 << 10
	dataOffset   = 128 << 10
	backupArea   = 128 << 10
	saltSize     = 64
)

// Header is the secret side of one volume header.
type Header struct {
	Password []byte
	PIM      int      // VeraCrypt: 0 means the default 500000 iterations, else 15000+PIM*1000
	Keyfiles [][]byte // contents, mixed into the password as the format describes
}

// Spec is a whole volume.
type Spec struct {
	Size      int64 // the container file's size, a multiple of 512
	TrueCrypt bool  // "TRUE" magic and TrueCrypt's 1000 iterations (no PIM)
	Outer     Header
	// Plain is the outer volume's plaintext (a filesystem image), at most Size-256 KiB.
	Plain []byte
	// Hidden, when HiddenPlain is set, is a hidden volume at the end of the outer data area.
	Hidden      Header
	HiddenPlain []byte
}

// Write creates path as the volume spec describes; unused sectors are random-looking.
func Write(path string, s Spec) error {
	if s.Size%sectorSize != 0 || s.Size < dataOffset+backupArea+64<<10 {
		return fmt.Errorf("tcryptfix: size %d is not a multiple of 512 of at least 320 KiB", s.Size)
	}
	outerSize := s.Size - dataOffset - backupArea
	if int64(len(s.Plain)) > outerSize {
		return errors.New("tcryptfix: outer plaintext larger than the data area")
	}
	img := make([]byte, s.Size)
	fill(img, 0x5eed)
	key := randomish(64, 1)
	hdr, err := header(s, s.Outer, key, 0, outerSize, dataOffset)
	if err != nil {
		return err
	}
	copy(img, hdr)
	copy(img[s.Size-backupArea:], hdr) // the backup header, same salt (allowed by the format)
	if err := encrypt(img, key, dataOffset, s.Plain); err != nil {
		return err
	}
	if s.HiddenPlain != nil {
		hsize := int64((len(s.HiddenPlain) + sectorSize - 1) / sectorSize * sectorSize)
		hstart := s.Size - backupArea - hsize
		if hstart < dataOffset+int64(len(s.Plain)) {
			return errors.New("tcryptfix: the hidden volume overlaps the outer plaintext")
		}
		hkey := randomish(64, 2)
		hh, err := header(s, s.Hidden, hkey, hsize, hsize, hstart)
		if err != nil {
			return err
		}
		copy(img[hiddenOffset:], hh)
		copy(img[s.Size-backupArea+hiddenOffset:], hh)
		if err := encrypt(img, hkey, hstart, s.HiddenPlain); err != nil {
			return err
		}
	}
	return os.WriteFile(path, img, 0o644)
}

// header builds one encrypted 512-byte header holding master key mk for the data at
// [start, start+size). hidden is the "size of hidden volume" field (0 for a normal volume).
func header(s Spec, h Header, mk []byte, hidden, size, start int64) ([]byte, error) {
	b := make([]byte, headerSize)
	salt := randomish(saltSize, byte(3+start%251))
	copy(b, salt)
	d := b[64:]
	if s.TrueCrypt {
		copy(d[0:], "TRUE")
		binary.BigEndian.PutUint16(d[6:], 0x0700) // minimum program version to open it
	} else {
		copy(d[0:], "VERA")
		binary.BigEndian.PutUint16(d[6:], 0x010b)
	}
	binary.BigEndian.PutUint16(d[4:], 5) // header format version
	binary.BigEndian.PutUint64(d[28:], uint64(hidden))
	binary.BigEndian.PutUint64(d[36:], uint64(size))
	binary.BigEndian.PutUint64(d[44:], uint64(start)) // master key scope
	binary.BigEndian.PutUint64(d[52:], uint64(size))
	binary.BigEndian.PutUint32(d[64:], sectorSize)
	copy(b[256:], mk)
	binary.BigEndian.PutUint32(d[8:], crc32.ChecksumIEEE(b[256:512]))
	binary.BigEndian.PutUint32(b[252:], crc32.ChecksumIEEE(b[64:252]))

	iter := 500000
	switch {
	case s.TrueCrypt:
		iter = 1000
	case h.PIM > 0:
		iter = 15000 + h.PIM*1000
	}
	pw := password(h, s.TrueCrypt)
	hk, err := pbkdf2.Key(sha512.New, string(pw), salt, iter, 64)
	if err != nil {
		return nil, err
	}
	c, err := xts.NewCipher(aes.NewCipher, hk)
	if err != nil {
		return nil, err
	}
	c.Encrypt(b[64:], b[64:], 0) // the encrypted part of the header is data unit 0
	return b, nil
}

// password mixes the keyfiles into the password: each keyfile (its first 1 MiB) runs a CRC-32
// whose four bytes, after every input byte, are added into a pool; the pool is added into the
// password padded to the pool's size (64 bytes; 128 for a VeraCrypt password longer than 64).
func password(h Header, trueCrypt bool) []byte {
	if len(h.Keyfiles) == 0 {
		return h.Password
	}
	n := 64
	if !trueCrypt && len(h.Password) > 64 {
		n = 128
	}
	pool := make([]byte, n)
	for _, kf := range h.Keyfiles {
		if len(kf) > 1<<20 {
			kf = kf[:1<<20]
		}
		crc := ^uint32(0)
		pos := 0
		for _, c := range kf {
			crc = crc32.IEEETable[byte(crc)^c] ^ (crc >> 8)
			for _, sh := range []uint{24, 16, 8, 0} {
				pool[pos] += byte(crc >> sh)
				pos = (pos + 1) % n
			}
		}
	}
	for i, c := range h.Password {
		pool[i] += c
	}
	return pool
}

// encrypt writes plain at offset off of img, sector by sector: the XTS data unit number is the
// sector's offset from the start of the container, as the format says.
func encrypt(img, key []byte, off int64, plain []byte) error {
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return err
	}
	buf := make([]byte, sectorSize)
	for i := 0; i < len(plain); i += sectorSize {
		clear(buf)
		copy(buf, plain[i:])
		pos := off + int64(i)
		c.Encrypt(img[pos:pos+sectorSize], buf, uint64(pos/sectorSize))
	}
	return nil
}

// randomish is n deterministic bytes that look random (a failing test reproduces).
func randomish(n int, seed byte) []byte {
	b := make([]byte, n)
	fill(b, uint64(seed)*0x9e3779b97f4a7c15+1)
	return b
}

func fill(b []byte, x uint64) {
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
}
