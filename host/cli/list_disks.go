package cli

import (
	"context"
	"io"

	"github.com/luksmount/luksmount/host/disks"
)

func listDisks(ctx context.Context, w io.Writer, asJSON bool, paths []string) error {
	var entries []disks.Entry
	var err error
	if len(paths) > 0 {
		for i, p := range paths {
			paths[i] = absTarget(p)
		}
		entries, err = disks.ListPaths(ctx, paths)
	} else {
		entries, err = disks.List(ctx)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return disks.WriteJSON(w, entries)
	}
	return disks.WriteTable(w, entries)
}
