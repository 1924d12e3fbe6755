//go:build darwin || linux || freebsd || netbsd || openbsd

package session

import (
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes an exclusive flock on f without waiting. The lock lives as long as the open file,
// so a supervisor that dies, however it dies, releases it.
func tryLock(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}
