//go:build linux

// Command luksmount-benchinit is PID 1 of the benchmark's NFS client VM: it mounts the export
// under test with the kernel NFS client and runs bench/workload on it, reporting JSON lines on a
// virtio-serial port, then powers off.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/luksmount/luksmount/bench/guestinit"
	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/bench/workload"
	"github.com/luksmount/luksmount/test/clientvm/guestkit"
)

const mnt = guestkit.Mnt

func main() {
	r, cfg, err := guestinit.Boot()
	if err == nil {
		err = run(r, cfg)
	}
	r.Finish(err)
}

func run(r *guestinit.Reporter, cfg guestspec.Config) error {
	t := time.Now()
	if err := guestinit.Network(); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	r.Step("network", t)
	t = time.Now()
	if err := guestkit.MountNFS(cfg.Server, cfg.Export, cfg.MountData()); err != nil {
		return err
	}
	r.Step("nfs-mount", t)
	_, err := workload.Run(context.Background(), mnt, cfg.Workload, workload.Env{
		DropCaches: guestinit.DropCaches,
		Report: func(res workload.Result) {
			r.Line(guestspec.Line{Kind: "result", Result: &res})
		},
	})
	if err != nil {
		return err
	}
	t = time.Now()
	if err := guestkit.UnmountNFS(); err != nil {
		return err
	}
	r.Step("nfs-unmount", t)
	return nil
}
