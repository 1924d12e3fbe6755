//go:build unix

package vm

import (
	"fmt"
	"os"
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
