package cli

import (
	"context"
	"io"

	"github.com/luksmount/luksmount/host/disks"
	"github.com/luksmount/luksmount/host/supervisor"
)

func listDisks(ctx context.Context, w io.Writer, asJSON bool, paths []string) error {
	var entries []disks.Entry
	var err error
	if len(paths) > 0 {
		var all []string
		for _, p := range paths { // a multi-device target lists its members
			all = append(all, supervisor.SplitTarget(absTargets(p))...)
		}
		entries, err = disks.ListPaths(ctx, all)
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
