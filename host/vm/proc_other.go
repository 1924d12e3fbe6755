//go:build !unix

package vm

import (
	"errors"
	"os"
	"syscall"
)

func ownedByMe(os.FileInfo) bool { return true }

func sysProcAttr(*User) *syscall.SysProcAttr { return nil }

func handOver(*User, string, bool, ...string) error {
	return errors.New("vm: running QEMU as another user is not supported on this OS")
}

func reachable(*User, string) error { return nil }
