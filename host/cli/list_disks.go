package cli

import (
	"context"
	"errors"
	"io"
)

// listDisks prints the drives host/disks finds (wired in when that package lands).
func listDisks(ctx context.Context, w io.Writer, asJSON bool) error {
	return errors.New("list is not available in this build yet (host/disks)")
}
