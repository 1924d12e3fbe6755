package fsops

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// NTFSVolumeDirty is VOLUME_IS_DIRTY in $Volume's $VOLUME_INFORMATION flags: Windows sets it
// when chkdsk must run at the next boot. ntfs-3g does not look at it (it checks only
// hiberfil.sys and $LogFile), so the agent reads it itself.
const NTFSVolumeDirty = 0x0001

// NTFSVolumeInfo is where an NTFS volume keeps its flags: the value of the $VOLUME_INFORMATION
// attribute of MFT record 3 ($Volume), and its copy in $MFTMirr.
type NTFSVolumeInfo struct {
	Flags uint16
	// FlagsAt are the byte offsets of the flags field in $MFT's and $MFTMirr's record 3 (for
	// tests that make a dirty volume); 0 when the field lies on an update-sequence slot.
	FlagsAt [2]int64
}

// ReadNTFSVolumeInfo reads $Volume's flags. The layout is the documented one (Linux's
// fs/ntfs3/ntfs.h, ntfs-3g's layout.h): the boot sector gives the cluster size, the record
// size and the clusters of $MFT and $MFTMirr; record 3's attributes are walked to type 0x70.
func ReadNTFSVolumeInfo(r io.ReaderAt) (NTFSVolumeInfo, error) {
	var v NTFSVolumeInfo
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return v, err
	}
	if string(bs[3:11]) != "NTFS    " {
		return v, errors.New("no NTFS boot sector")
	}
	le := binary.LittleEndian
	sector := int64(le.Uint16(bs[0x0B:]))
	spc := int64(bs[0x0D])
	if spc > 0x80 { // clusters over 64 KiB: 2^(256-n) sectors
		spc = 1 << (256 - spc)
	}
	cluster := sector * spc
	recSize := int64(int8(bs[0x40]))
	if recSize < 0 {
		recSize = 1 << -recSize
	} else {
		recSize *= cluster
	}
	if sector < 256 || cluster == 0 || recSize < 512 || recSize > 1<<16 {
		return v, fmt.Errorf("implausible NTFS geometry (sector %d, cluster %d, record %d)", sector, cluster, recSize)
	}
	for i, lcnAt := range []int{0x30, 0x38} {
		base := int64(le.Uint64(bs[lcnAt:]))*cluster + 3*recSize
		rec := make([]byte, recSize)
		if _, err := r.ReadAt(rec, base); err != nil {
			return v, err
		}
		flags, at, err := volumeFlags(rec, sector)
		if err != nil {
			return v, fmt.Errorf("$Volume (%s): %w", [2]string{"$MFT", "$MFTMirr"}[i], err)
		}
		if i == 0 {
			v.Flags = flags
		}
		if at > 0 {
			v.FlagsAt[i] = base + at
		}
	}
	return v, nil
}

// volumeFlags finds $VOLUME_INFORMATION's flags in one MFT record, undoing the update
// sequence (the last two bytes of each sector are kept in the record's array).
func volumeFlags(rec []byte, sector int64) (flags uint16, at int64, err error) {
	le := binary.LittleEndian
	if string(rec[:4]) != "FILE" {
		return 0, 0, errors.New("no FILE record")
	}
	usaOff, usaCount := int(le.Uint16(rec[4:])), int(le.Uint16(rec[6:]))
	if usaCount < 1 || usaOff+2*usaCount > len(rec) || int64(usaCount-1)*sector > int64(len(rec)) {
		return 0, 0, errors.New("bad update sequence")
	}
	fixed := make(map[int]bool)
	for i := 1; i < usaCount; i++ {
		end := i*int(sector) - 2
		copy(rec[end:end+2], rec[usaOff+2*i:usaOff+2*i+2])
		fixed[end], fixed[end+1] = true, true
	}
	off := int(le.Uint16(rec[0x14:]))
	for off+16 <= len(rec) {
		typ, length := le.Uint32(rec[off:]), int(le.Uint32(rec[off+4:]))
		if typ == 0xFFFFFFFF || length < 16 || off+length > len(rec) {
			break
		}
		if typ == 0x70 && rec[off+8] == 0 { // resident $VOLUME_INFORMATION
			val := off + int(le.Uint16(rec[off+0x14:]))
			if int(le.Uint32(rec[off+0x10:])) < 12 || val+12 > len(rec) {
				return 0, 0, errors.New("short $VOLUME_INFORMATION")
			}
			f := val + 0x0A
			if fixed[f] || fixed[f+1] {
				return le.Uint16(rec[f:]), 0, nil
			}
			return le.Uint16(rec[f:]), int64(f), nil
		}
		off += length
	}
	return 0, 0, errors.New("no $VOLUME_INFORMATION")
}
