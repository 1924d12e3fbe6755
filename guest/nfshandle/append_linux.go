package nfshandle

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AppendAt appends the handle of the entry cname (a single component,
// NUL-terminated, as getdents gives it) in dirfd to dst: At without
// allocating, for READDIRPLUS, which makes one handle per entry. Anything
// the fast path cannot do goes through At, so both give the same handle.
func (t *Table) AppendAt(dst []byte, dirfd int, cname []byte) ([]byte, error) {
	if len(cname) < 2 || cname[len(cname)-1] != 0 {
		return nil, unix.EINVAL
	}
	if t.paths != nil || len(t.rootH) < 3 || t.rootH[2] != version {
		// The table does not use kernel handles on this filesystem (the root's handle is of
		// another kind): At knows what it does.
		h, err := t.At(dirfd, string(cname[:len(cname)-1]))
		if err != nil {
			return nil, err
		}
		return append(dst, h...), nil
	}
	var kh struct {
		bytes uint32
		typ   int32
		data  [MaxSize - headerSize]byte
	}
	kh.bytes = uint32(len(kh.data))
	var mountID int32
	_, _, e := unix.Syscall6(unix.SYS_NAME_TO_HANDLE_AT, uintptr(dirfd), uintptr(unsafe.Pointer(&cname[0])),
		uintptr(unsafe.Pointer(&kh)), uintptr(unsafe.Pointer(&mountID)), 0, 0)
	if e != 0 || kh.bytes == 0 || kh.bytes > uint32(len(kh.data)) {
		h, err := t.At(dirfd, string(cname[:len(cname)-1]))
		if err != nil {
			return nil, err
		}
		return append(dst, h...), nil
	}
	n := int(kh.bytes)
	dst = append(dst, magic0, magic1, version, byte(n))
	dst = append(dst, t.fsid[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(kh.typ))
	dst = append(dst, kh.data[:n]...)
	for i := n; i%4 != 0; i++ {
		dst = append(dst, 0)
	}
	return dst, nil
}
