//go:build unix

package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

func ownedByMe(st os.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(s.Uid) == os.Geteuid()
}

// sysProcAttr puts QEMU in its own process group and, if asked, runs it as another user.
func sysProcAttr(u *User) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
	}
	return a
}

// reachable checks that u can search every directory from / down to dir, so QEMU running as u can
// reach the sockets in the runtime directory made inside dir.
func reachable(u *User, dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("cannot check %s: %w", d, err)
		}
		s, ok := st.Sys().(*syscall.Stat_t)
		if ok {
			m := st.Mode().Perm()
			can := m&0o001 != 0 || (s.Uid == u.UID && m&0o100 != 0) || (s.Gid == u.GID && m&0o010 != 0)
			if !can {
				return fmt.Errorf("vm: QEMU running as uid %d cannot reach the runtime directory: %s is mode %s; place the runtime directory under directories others may traverse (e.g. 0711)", u.UID, d, m)
			}
		}
		if p := filepath.Dir(d); p == d {
			return nil
		}
	}
}

// handOver lets QEMU running as u reach the runtime directory and the sockets it connects to.
// The directory stays 0700, now the user's: the user is the one who unlocked the drive.
func handOver(u *User, dir string, created bool, sockets ...string) error {
	if !created {
		return fmt.Errorf("vm: to run QEMU as uid %d, let Start create the runtime directory", u.UID)
	}
	for _, p := range append([]string{dir}, sockets...) {
		if err := os.Lchown(p, int(u.UID), int(u.GID)); err != nil {
			return fmt.Errorf("cannot hand %s to uid %d: %w", p, u.UID, err)
		}
	}
	return nil
}

func statOwner(path string) (int, os.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("no owner for %s", path)
	}
	return int(s.Uid), st.Mode(), nil
}
