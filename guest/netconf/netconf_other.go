//go:build !linux

package netconf

import (
	"errors"
	"time"
)

var errUnsupported = errors.New("netconf: only supported in the Linux guest")

// Loopback is Linux-only.
func Loopback() error { return errUnsupported }

// Configure is Linux-only.
func Configure(c Config, wait time.Duration) error { return errUnsupported }
