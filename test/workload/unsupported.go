//go:build !linux && !darwin

// Package workload is the checked filesystem workload of luksmount's end-to-end tests. It runs on Linux
// and macOS only.
package workload

import (
	"errors"
	"io"
)

// ErrUnsupported is returned on systems the workload does not run on.
var ErrUnsupported = errors.New("luksmount-workload runs on linux and darwin only")

// Main reports that this OS is unsupported.
func Main(args []string, stdout, stderr io.Writer) error { return ErrUnsupported }

// ExitCode maps Main's error to an exit status.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return 2
}
