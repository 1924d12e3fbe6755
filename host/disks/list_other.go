//go:build !linux && !darwin

package disks

import (
	"context"
	"fmt"
	"runtime"
)

// List is not supported here.
func List(context.Context) ([]Entry, error) {
	return nil, fmt.Errorf("listing drives is not supported on %s", runtime.GOOS)
}
