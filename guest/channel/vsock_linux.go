package channel

import (
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/vsock"
)

// ErrNoVsock means the VM has no virtio-vsock device.
var ErrNoVsock = errors.New("no vsock device")

// ListenVsock listens on AF_VSOCK port. Without a vsock device the kernel still has /dev/vsock but
// reports no context id, so that is checked first.
func ListenVsock(port uint32) (net.Listener, error) {
	cid, err := vsock.ContextID()
	if err != nil || cid == ^uint32(0) {
		return nil, ErrNoVsock
	}
	l, err := vsock.Listen(port, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on vsock port %d: %w", port, err)
	}
	return l, nil
}
