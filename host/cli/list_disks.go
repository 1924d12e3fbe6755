package cli

import (
	"context"
	"io"

	"github.com/luksmount/luksmount/host/disks"
)

func listDisks(ctx context.Context, w io.Writer, asJSON bool) error {
	entries, err := disks.List(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return disks.WriteJSON(w, entries)
	}
	return disks.WriteTable(w, entries)
}
