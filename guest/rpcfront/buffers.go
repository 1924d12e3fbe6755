package rpcfront

import "sync"

// Records and replies are recycled through a few size classes: a READ or
// WRITE of 1 MiB would otherwise allocate (and zero) 1 MiB per call, and
// the garbage collector would run every few calls. The largest class holds
// a full-size record (1 MiB of data plus its header).
var bufClasses = [...]int{4 << 10, 64<<10 + 4<<10, 256<<10 + 4<<10, 1<<20 + 128<<10}

var bufPools [len(bufClasses)]sync.Pool

func bufClass(n int) int {
	for i, c := range bufClasses {
		if n <= c {
			return i
		}
	}
	return -1
}

// GetBuffer returns an empty slice with room for at least n bytes, recycled
// when possible. Its contents are not zeroed.
func GetBuffer(n int) []byte {
	i := bufClass(n)
	if i < 0 {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[i].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, bufClasses[i])
}

// PutBuffer recycles b, which nothing may use afterwards. Buffers whose
// capacity is not exactly a class (grown, or made elsewhere) are left to
// the garbage collector.
func PutBuffer(b []byte) {
	i := bufClass(cap(b))
	if i < 0 || cap(b) != bufClasses[i] {
		return
	}
	b = b[:0]
	bufPools[i].Put(&b)
}
