package agent

import "syscall"

// statfsTotal is the size of the filesystem mounted at path.
func statfsTotal(path string) (int64, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return 0, err
	}
	return int64(s.Blocks) * int64(s.Bsize), nil
}
