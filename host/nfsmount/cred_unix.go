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
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.UID, Gid: cred.GID, NoSetGroups: true}}
}
