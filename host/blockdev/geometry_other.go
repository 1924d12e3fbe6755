//go:build !linux && !darwin

package blockdev

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

const runtimeGOOS = runtime.GOOS

// claimExclusive has no equivalent here; the flock guards against other
// luksmounts and the CLI checks the mount table itself.
func claimExclusive(string) (io.Closer, error) { return nil, nil }

func openTarget(path string, isImage, readOnly bool) (*os.File, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	return f, nil
}

func deviceGeometry(*os.File) (geometry, error) {
	return geometry{}, fmt.Errorf("raw devices are not supported on %s; use an image file", runtime.GOOS)
}
