package blockdev

import (
	"fmt"
	"io"
)

// alignedReader widens every read to whole blocks.
type alignedReader struct {
	r     io.ReaderAt
	block int64
	size  int64
}

// NewAlignedReader returns an io.ReaderAt over r that only ever issues reads
// at multiples of blockSize with lengths that are multiples of blockSize, and
// that stops at size (the device size; <= 0 means unknown). Raw disk devices
// reject anything else with EINVAL.
func NewAlignedReader(r io.ReaderAt, blockSize int, size int64) io.ReaderAt {
	if blockSize <= 0 {
		blockSize = ImageLogicalBlockSize
	}
	return &alignedReader{r: r, block: int64(blockSize), size: size}
}

func (a *alignedReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := off + int64(len(p))
	if a.size > 0 {
		if off >= a.size {
			return 0, io.EOF
		}
		if end > a.size {
			end = a.size
		}
	}
	start := off - off%a.block
	stop := (end + a.block - 1) / a.block * a.block
	if a.size > 0 && stop > a.size {
		// A device size is always whole blocks; a short tail only happens
		// with images, which accept unaligned reads.
		stop = a.size
	}
	buf := make([]byte, stop-start)
	n, err := a.r.ReadAt(buf, start)
	got := int64(n) - (off - start)
	if got < 0 {
		got = 0
	}
	c := copy(p, buf[off-start:off-start+min(got, end-off)])
	if c < len(p) {
		if err == nil {
			err = io.EOF
		}
		return c, err
	}
	return c, nil
}
