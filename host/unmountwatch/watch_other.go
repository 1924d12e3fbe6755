//go:build !linux && !darwin

package unmountwatch

import (
	"context"
	"fmt"
	"runtime"
)

// Watch is not supported here.
func Watch(context.Context, Target) (<-chan Event, error) {
	return nil, fmt.Errorf("watching mounts is not supported on %s", runtime.GOOS)
}
