//go:build unix

package doctor

import (
	"golang.org/x/sys/unix"
)

func fileOwner(name string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return 0, err
	}
	return int(st.Uid), nil
}

func accessW(dir string) error { return unix.Access(dir, unix.W_OK) }
