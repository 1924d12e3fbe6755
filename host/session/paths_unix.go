//go:build unix

package session

import (
	"fmt"
	"os"
	"syscall"
)

// checkRoot refuses a runtime directory another user could tamper with. /tmp/luksmount-UID is
// in a world-writable directory: anyone may create it first, and whoever can write to it can
// swap a session directory (and so the sockets QEMU connects to, which carry the passphrase).
func checkRoot(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("cannot use runtime directory %s: %w", dir, err)
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(s.Uid) != os.Geteuid() || st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("runtime directory %s must be a directory owned by uid %d and writable only by it (it is %s); remove it, or set %s", dir, os.Geteuid(), st.Mode(), EnvRuntimeDir)
	}
	return nil
}
