//go:build !linux

package clientvm

import "syscall"

func dieWithParent() *syscall.SysProcAttr { return nil }
