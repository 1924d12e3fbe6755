//go:build !darwin

package diskutil

import (
	"context"
	"fmt"
	"runtime"
)

// New returns a Tool whose commands fail: diskutil exists only on macOS.
func New() *Tool { return &Tool{Path: "diskutil", Runner: unsupported{}} }

type unsupported struct{}

func (unsupported) Output(context.Context, string, ...string) ([]byte, error) {
	return nil, fmt.Errorf("diskutil is only available on macOS, not %s", runtime.GOOS)
}

// KernelMounts is macOS-only.
func KernelMounts() ([]Mount, error) {
	return nil, fmt.Errorf("getfsstat is read only on macOS, not %s", runtime.GOOS)
}
