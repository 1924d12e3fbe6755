package channel

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// hupPoll is how often a disconnected port is re-checked: with no host, poll() reports POLLHUP at
// once, so waiting is a sleep loop.
const hupPoll = 50 * time.Millisecond

// AcceptPort opens the virtio-serial port at path and returns it once a host is connected.
// The returned file reads io.EOF when the host disconnects; the caller closes it and calls
// AcceptPort again. The port can have one opener at a time.
func AcceptPort(ctx context.Context, path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path) // non-blocking: reads and writes use the netpoller, so Close unblocks them
	for {
		connected, err := hostConnected(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot poll %s: %w", path, err)
		}
		if connected {
			return f, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(hupPoll):
		}
	}
}

func hostConnected(f *os.File) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var hup bool
	var perr error
	cerr := rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT}}
		for {
			_, perr = unix.Poll(pfd, 0)
			if perr != unix.EINTR {
				break
			}
		}
		hup = pfd[0].Revents&unix.POLLHUP != 0
	})
	if cerr != nil {
		return false, cerr
	}
	if perr != nil {
		return false, perr
	}
	return !hup, nil
}
