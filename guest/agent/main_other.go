//go:build !linux

package agent

import "errors"

// Main is the guest's PID 1 and runs only in the Linux guest.
func Main() error {
	return errors.New("luksmount-agent runs only as PID 1 in the Linux guest VM")
}
