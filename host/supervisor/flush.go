package supervisor

import (
	"fmt"
	"time"

	"github.com/luksmount/luksmount/host/blockdev"
)

// flushTimeout bounds the drive cache flush: a drive that was pulled must not hang the stop.
var flushTimeout = 60 * time.Second

// flushDrive flushes the drive's write cache once QEMU has exited and before anything reports
// "stopped": QEMU's own flushes do not reach the cache on macOS (see blockdev.Device.Flush), so
// the last writes of a session could still be lost to an unplug.
func (s *sup) flushDrive() error {
	if s.dev == nil || s.dev.File == nil || s.dev.ReadOnly {
		return nil
	}
	flush := s.deps.Flush
	if flush == nil {
		flush = (*blockdev.Device).Flush
	}
	t := s.log.Start("flush drive cache")
	done := make(chan error, 1)
	go func() { done <- flush(s.dev) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(flushTimeout):
		err = fmt.Errorf("no answer within %s", flushTimeout)
	}
	if err != nil {
		return t.Done(fmt.Errorf("%w: cannot flush the write cache of %s (%w); do not unplug it before `sync` or a clean eject", ErrUncleanShutdown, s.dev.Path, err), "")
	}
	t.Done(nil, "%s", s.dev.Path)
	return s.flushMembers()
}
