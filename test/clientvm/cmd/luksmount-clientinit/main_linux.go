//go:build linux

// Command luksmount-clientinit is PID 1 of the test client VM: it mounts a luksmount export with the
// Linux kernel's NFS client and runs the checked workload on it, writing JSON lines to a
// virtio-serial port, then powers off.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
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

// runDurable writes, fsyncs and reports files one by one; a line is sent only after both the file
// and its directory entry are durable by the client's own fsync.
func runDurable(r *reporter, spec clientvm.Spec) error {
	dir := filepath.Join(mnt, spec.DurableDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	size := spec.DurableKiB << 10
	if size == 0 {
		size = 64 << 10
	}
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), uint64(time.Now().UnixNano())))
	buf := make([]byte, size)
	for i := 0; i < spec.Durable; i++ {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		// The "safe save" pattern: write a temporary name, fsync it, rename it into place. The
		// client's directory fsync sends nothing over NFSv3, so the rename is durable only if the
		// server committed it before replying.
		name := fmt.Sprintf("d%05d.bin", i)
		tmp := filepath.Join(dir, "."+name+".tmp")
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		// Several writes per file so the client has unstable data in flight when the server dies.
		for off := 0; off < len(buf); off += 16 << 10 {
			end := min(off+16<<10, len(buf))
			if _, err := f.Write(buf[off:end]); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
		if err := d.Sync(); err != nil {
			return err
		}
		sum := sha256.Sum256(buf)
		r.line(clientvm.Line{Kind: "durable", Manifest: filepath.Join(spec.DurableDir, name) + " " + hex.EncodeToString(sum[:])})
	}
	return nil
}
