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

func statOwner(path string) (int, os.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return -1, st.Mode(), nil
}
