//go:build unix

package supervisor

import (
	"os"
	"syscall"
)

// allocated is how many bytes an image file takes on disk (st_blocks), or -1.
func allocated(path string, isImage bool) int64 {
	fi, err := os.Stat(path)
	if err != nil || !isImage {
		return -1
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return -1
}
