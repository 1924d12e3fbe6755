//go:build !linux

package channel

import (
	"context"
	"errors"
	"net"
	"os"
)

var errUnsupported = errors.New("channel: only supported in the Linux guest")

// ErrNoVsock means the VM has no virtio-vsock device.
var ErrNoVsock = errors.New("no vsock device")

// AcceptPort is Linux-only.
func AcceptPort(ctx context.Context, path string) (*os.File, error) { return nil, errUnsupported }

// ListenVsock is Linux-only.
func ListenVsock(port uint32) (net.Listener, error) { return nil, ErrNoVsock }
