package supervisor

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
)

// Trim and resize of a mounted session, asked for over the session socket (`luksmount trim`,
// `luksmount resize`).

var (
	trimTimeout   = 30 * time.Minute // fstrim walks every free extent of a large drive
	resizeTimeout = 10 * time.Minute // resize2fs adds block groups online
)

// stackOp runs a trim or resize request and says what it did.
func (s *sup) stackOp(ctx context.Context, req socketRequest) (string, error) {
	m := s.machine()
	if m == nil {
		return "", fmt.Errorf("%s is stopping", s.dev.Path)
	}
	if req.Op == "trim" {
		return s.trim(ctx, m)
	}
	return s.resize(ctx, m, req.Size)
}

func (s *sup) trim(ctx context.Context, m Machine) (string, error) {
	p := s.dev.Path
	if !s.opts.Discard {
		return "", control.Errorf(control.CodeInvalidArgument, "%s was mounted without --discard, so TRIM cannot reach it: stop it, mount again with `luksmount --discard %s`, then run `luksmount trim %s`", p, p, p)
	}
	before := allocated(s.dev.Path, s.dev.IsImage)
	t := s.log.Start("trim")
	tctx, cancel := context.WithTimeout(ctx, trimTimeout)
	r, err := m.Control().Trim(tctx)
	cancel()
	if err != nil {
		return "", t.Done(fmt.Errorf("cannot trim %s: %w", p, err), "")
	}
	msg := fmt.Sprintf("trimmed %s: the filesystem discarded %s of free space", p, sizeString(r.TrimmedBytes))
	if s.dev.IsImage && before >= 0 {
		after := allocated(s.dev.Path, true)
		msg += fmt.Sprintf("; the image now takes %s on disk (was %s)", sizeString(after), sizeString(before))
	}
	t.Done(nil, "%s", msg)
	return msg, nil
}

func (s *sup) resize(ctx context.Context, m Machine, size int64) (string, error) {
	p := s.dev.Path
	switch {
	case size <= 0:
		return "", control.Errorf(control.CodeInvalidArgument, "resize needs --size (for example --size 8G)")
	case len(s.members()) > 0:
		return "", control.Errorf(control.CodeInvalidArgument, "%s spans several devices: luksmount grows single image files only", s.targetPath())
	case !s.dev.IsImage:
		return "", control.Errorf(control.CodeInvalidArgument, "%s is a disk, not an image file: luksmount grows image files only; grow the partition with your partitioning tool", p)
	case s.opts.ReadOnly():
		return "", control.Errorf(control.CodeInvalidArgument, "%s is mounted read-only: mount it read-write to resize it", p)
	case s.header != nil:
		return "", errDetachedResize(p) // header.go
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	cur := fi.Size()
	size = (size + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB: whole sectors for every block size
	switch {
	case size < cur:
		return "", control.Errorf(control.CodeInvalidArgument, "%s is %s; refusing to shrink it to %s: a mounted ext4 or xfs cannot shrink, and nothing was changed (give a size above %s)", p, sizeString(cur), sizeString(size), sizeString(cur))
	case size == cur:
		return "", control.Errorf(control.CodeInvalidArgument, "%s is already %s: give a larger --size", p, sizeString(cur))
	}
	q, ok := m.(interface{ QMPSocket() string })
	if !ok {
		return "", control.Errorf(control.CodeInternal, "this VM cannot grow its disk (no QMP)")
	}
	t := s.log.Start("resize")
	rctx, cancel := context.WithTimeout(ctx, resizeTimeout)
	defer cancel()
	if err := vm.BlockResize(rctx, q.QMPSocket(), 0, size); err != nil {
		return "", t.Done(fmt.Errorf("cannot grow %s: %w; nothing was changed", p, err), "")
	}
	s.log.Note(timelog.Host, "resize: %s grown from %s to %s", p, sizeString(cur), sizeString(size))
	r, err := m.Control().Resize(rctx, control.ResizeRequest{DiskBytes: size})
	if err != nil {
		return "", t.Done(fmt.Errorf("%s grew to %s, but its filesystem kept its size: %w; run `luksmount resize --size %d %s` again", p, sizeString(size), err, size, p), "")
	}
	s.dev.Size = size
	msg := fmt.Sprintf("grew %s from %s to %s: %s now holds %s", p, sizeString(cur), sizeString(size), r.FSType, sizeString(r.FSBytes))
	t.Done(nil, "%s (%s)", msg, r.Tool)
	return msg, nil
}

// RequestStackOp asks a running supervisor to trim ("trim") or grow ("resize", to size bytes) its
// drive, and returns what it did.
func RequestStackOp(socket, op string, size int64) (string, error) {
	timeout := trimTimeout
	if op == "resize" {
		timeout = resizeTimeout
	}
	rep, err := ask(socket, socketRequest{Op: op, Size: size}, timeout+30*time.Second)
	if err != nil {
		return "", err
	}
	return rep.Done, rep.err()
}
