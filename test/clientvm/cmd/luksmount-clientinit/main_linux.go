//go:build linux

// Command luksmount-clientinit is PID 1 of the test client VM: it mounts a luksmount export with the
// Linux kernel's NFS client and runs the checked workload on it, writing JSON lines to a
// virtio-serial port, then powers off.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/luksmount/luksmount/test/clientvm"
	"github.com/luksmount/luksmount/test/clientvm/guestkit"
	"github.com/luksmount/luksmount/test/workload"
	"golang.org/x/sys/unix"
)

const mnt = guestkit.Mnt

type reporter struct{ port *guestkit.Port }

func (r *reporter) line(l clientvm.Line) { r.port.Write(l) }

func (r *reporter) step(name string, t0 time.Time) {
	r.line(clientvm.Line{Kind: "step", Step: name, Seconds: time.Since(t0).Seconds()})
}

func main() {
	t0 := time.Now()
	port, err := guestkit.Boot(clientvm.ResultsPort)
	r := &reporter{port: port}
	if err == nil {
		r.step("boot", t0)
		err = run(r)
	}
	if err != nil {
		r.line(clientvm.Line{Kind: "error", Error: err.Error()})
	}
	port.PowerOff()
}

func run(r *reporter) error {
	b, err := os.ReadFile(clientvm.SpecPath)
	if err != nil {
		return fmt.Errorf("no test spec: %w", err)
	}
	var spec clientvm.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("bad test spec: %w", err)
	}
	t := time.Now()
	if err := guestkit.Network(); err != nil {
		return err
	}
	r.step("network", t)

	t = time.Now()
	if err := guestkit.MountNFS(clientvm.HostAlias, spec.Export, spec.MountData()); err != nil {
		return err
	}
	r.step("nfs mount", t)

	if spec.Run != "" {
		if err := runWorkload(r, spec); err != nil {
			return err
		}
	}
	if spec.Durable > 0 {
		if err := runDurable(r, spec); err != nil {
			return err
		}
	}
	if spec.NoUnmount {
		return nil
	}
	t = time.Now()
	if err := guestkit.UnmountNFS(); err != nil {
		return err
	}
	r.step("nfs unmount", t)
	return nil
}

func runWorkload(r *reporter, spec clientvm.Spec) error {
	filter, err := regexp.Compile(spec.Run)
	if err != nil {
		return fmt.Errorf("bad scenario pattern: %w", err)
	}
	manifest := "/tmp/manifest"
	if b, err := os.ReadFile(clientvm.ManifestPath); err == nil {
		if err := os.WriteFile(manifest, b, 0o600); err != nil {
			return err
		}
	}
	os.MkdirAll("/tmp/outside", 0o755)
	opts := workload.Options{
		Outside:     "/tmp/outside",
		Manifest:    manifest,
		Files:       spec.Files,
		Writers:     spec.Writers,
		FSXDuration: time.Duration(spec.FSXSeconds) * time.Second,
		Seed:        spec.Seed,
		Refuses:     splitList(spec.Refuses),
	}
	if spec.UID != 0 || spec.GID != 0 {
		// The workload's own process drops to the client user so AUTH_SYS carries that uid.
		if err := unix.Setgroups([]int{spec.GID}); err != nil {
			return err
		}
		if err := unix.Setgid(spec.GID); err != nil {
			return err
		}
		if err := unix.Setuid(spec.UID); err != nil {
			return err
		}
	}
	passed, failed := 0, 0
	_, err = workload.Run(context.Background(), mnt, filter, opts, func(res workload.Result) {
		switch {
		case res.Skipped: // skipped results carry OK=true: count them apart
		case res.OK:
			passed++
		default:
			failed++
		}
		raw, _ := json.Marshal(res)
		r.line(clientvm.Line{Kind: "result", Result: raw})
	})
	if b, rerr := os.ReadFile(manifest); rerr == nil && len(b) > 0 {
		r.line(clientvm.Line{Kind: "manifest", Manifest: string(b)})
	}
	r.line(clientvm.Line{Kind: "done", Passed: passed, Failed: failed})
	return err
}

// runDurable streams a "durable" line for each file as soon as workload.WriteDurable made it
// durable (content, truncate and chmod).
func runDurable(r *reporter, spec clientvm.Spec) error {
	size := spec.DurableKiB << 10
	if size == 0 {
		size = 64 << 10
	}
	return workload.WriteDurable(mnt, spec.DurableDir, spec.Durable, size, spec.Seed^time.Now().UnixNano(), func(d workload.DurableRecord) {
		r.line(clientvm.Line{Kind: "durable", Manifest: d.String()})
	})
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
