//go:build unix

package nfsmount

import (
	"os/exec"
	"syscall"
)

func setCred(cmd *exec.Cmd, cred *Cred) {
	if cred == nil {
		return
	}
	groups := cred.Groups
	if len(groups) == 0 {
		groups = []uint32{cred.GID} // never inherit the supervisor's (root's) groups
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: groups}}
}
