//go:build !linux

package netconf

import (
	"errors"
	"net"
	"time"
)

var errUnsupported = errors.New("netconf: only supported in the Linux guest")

// Loopback is Linux-only.
func Loopback() error { return errUnsupported }

// Configure is Linux-only.
func Configure(c Config, wait time.Duration) error { return errUnsupported }

// Addrs is Linux-only.
func Addrs(name string) []net.IP { return nil }
