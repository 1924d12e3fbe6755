//go:build linux

// Command luksmount-nfsdinit is PID 1 of the benchmark's kernel-nfsd VM (bench only, nfsd image
// variant): it unlocks the benchmark's LUKS disk with cryptsetup, mounts ext4, and then either
// runs bench/workload directly on the mount ("local": the limit without NFS) or exports it with
// the kernel's nfsd and Debian's nfs-kernel-server userspace until the host says stop ("nfsd":
// the architecture of anylinuxfs). It reports JSON lines on a virtio-serial port.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestinit"
	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/bench/workload"
	"golang.org/x/sys/unix"
)

const (
	mnt    = "/mnt/data"
	mapper = "lmbench"
)

func main() {
	// exec looks binaries up in our own PATH, and the kernel starts PID 1 without one.
	os.Setenv("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
	r, cfg, err := guestinit.Boot()
	if err == nil {
		err = run(r, cfg)
	}
	r.Finish(err)
}

// network brings up the server network and the TCP stream server.
func network(r *guestinit.Reporter) error {
	t := time.Now()
	if err := guestinit.ServerNetwork(); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if err := guestinit.StreamServer(); err != nil {
		return fmt.Errorf("stream server: %w", err)
	}
	r.Step("network", t)
	return nil
}

func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/sbin:/usr/sbin:/bin:/usr/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func sh(stdin []byte, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/sbin:/usr/sbin:/bin:/usr/bin", "DM_DISABLE_UDEV=1"}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func run(r *guestinit.Reporter, cfg guestspec.Config) error {
	if cfg.Mode == guestspec.ModeNet {
		if err := network(r); err != nil {
			return err
		}
		r.Line(guestspec.Line{Kind: "ready", MemUsedKiB: guestinit.MemUsedKiB()})
		return guestinit.WaitStop()
	}
	if k := cfg.KDFBench; k != nil {
		// cryptsetup's own figure for the keyslot's KDF, in this guest, before anything else runs.
		t := time.Now()
		out, err := output("cryptsetup", "benchmark", "--pbkdf", k.PBKDF, "--pbkdf-memory", strconv.Itoa(k.MemoryKiB),
			"--pbkdf-parallel", strconv.Itoa(k.Parallel), "--iter-time", strconv.Itoa(k.IterTimeMS))
		if err != nil {
			// A missing figure is a gap in the table, not a reason to skip the nfsd rows.
			out = k.PBKDF + " N/A: " + err.Error()
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, k.PBKDF) {
				r.Line(guestspec.Line{Kind: "kdf-bench", Text: strings.TrimSpace(l)})
			}
		}
		r.Step("kdf-bench", t)
	}
	dev := cfg.Device
	if dev == "" {
		dev = "/dev/vda"
	}
	os.MkdirAll("/run/cryptsetup", 0o700)
	pass := []byte(cfg.Passphrase)
	// The KDF alone: what unlocking costs before any mapping exists.
	t := time.Now()
	if err := sh(pass, "cryptsetup", "open", "--test-passphrase", "--key-file", "-", dev); err != nil {
		return err
	}
	r.Step("kdf", t)
	t = time.Now()
	if err := sh(pass, "cryptsetup", "open", "--key-file", "-", dev, mapper); err != nil {
		return err
	}
	r.Step("unlock", t)
	t = time.Now()
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount("/dev/mapper/"+mapper, mnt, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount ext4: %w", err)
	}
	r.Step("mount", t)

	var err error
	switch cfg.Mode {
	case guestspec.ModeLocal:
		r.Line(guestspec.Line{Kind: "ready", MemUsedKiB: guestinit.MemUsedKiB()})
		_, err = workload.Run(context.Background(), mnt, cfg.Workload, workload.Env{
			DropCaches: guestinit.DropCaches,
			Report: func(res workload.Result) {
				r.Line(guestspec.Line{Kind: "result", Result: &res})
			},
		})
	case guestspec.ModeNFSD:
		err = serve(r, cfg)
	default:
		err = fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	t = time.Now()
	unix.Sync()
	if uerr := unix.Unmount(mnt, 0); uerr != nil && err == nil {
		err = fmt.Errorf("umount: %w", uerr)
	}
	if cerr := sh(nil, "cryptsetup", "close", mapper); cerr != nil && err == nil {
		err = cerr
	}
	r.Step("close", t)
	return err
}

// serve exports the mount with the kernel nfsd: rpcbind, exportfs, rpc.mountd on a fixed
// port, rpc.nfsd with NFSv4 off (the client speaks v3, as ours does).
func serve(r *guestinit.Reporter, cfg guestspec.Config) error {
	if err := network(r); err != nil {
		return err
	}
	t := time.Now()
	for _, d := range []string{"/var/lib/nfs/rpc_pipefs", "/var/lib/nfs/v4recovery", "/run/rpcbind", "/proc/fs/nfsd", "/var/run"} {
		os.MkdirAll(d, 0o755)
	}
	for _, f := range []string{"/var/lib/nfs/etab", "/var/lib/nfs/rmtab", "/etc/exports"} {
		os.WriteFile(f, nil, 0o644)
	}
	if err := unix.Mount("nfsd", "/proc/fs/nfsd", "nfsd", 0, ""); err != nil && err != unix.EBUSY {
		return fmt.Errorf("mount nfsd filesystem: %w", err)
	}
	threads := cfg.NFSDThreads
	if threads == 0 {
		threads = 8
	}
	opts := cfg.ExportOptions
	if opts == "" {
		opts = "rw,sync,no_root_squash,insecure,no_subtree_check"
	}
	// The kernel registers nfsd with rpcbind and refuses to start without it. Foreground, so its
	// complaints reach the console.
	os.WriteFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n_rpc:x:100:65534::/run/rpcbind:/bin/false\n"), 0o644)
	os.WriteFile("/etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	rpcbind := exec.Command("rpcbind", "-f")
	if con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		rpcbind.Stdout, rpcbind.Stderr = con, con
	}
	if err := rpcbind.Start(); err != nil {
		return fmt.Errorf("rpcbind: %w", err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat("/run/rpcbind.sock"); err == nil {
			break
		}
		if i == 100 {
			return fmt.Errorf("rpcbind did not create /run/rpcbind.sock within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	steps := [][]string{
		{"exportfs", "-o", opts, "*:" + mnt},
		{"rpc.mountd", "-p", strconv.Itoa(cfg.MountdPort), "-N", "4", "--no-udp"},
		{"rpc.nfsd", "-N", "4", "--no-udp", strconv.Itoa(threads)},
	}
	for _, s := range steps {
		if err := sh(nil, s[0], s[1:]...); err != nil {
			return err
		}
	}
	r.Step("nfs", t)
	r.Line(guestspec.Line{Kind: "ready", MemUsedKiB: guestinit.MemUsedKiB()})
	if err := guestinit.WaitStop(); err != nil {
		return fmt.Errorf("stop port: %w", err)
	}
	t = time.Now()
	err := sh(nil, "rpc.nfsd", "0")
	if e := sh(nil, "exportfs", "-ua"); e != nil && err == nil {
		err = e
	}
	r.Step("nfs-stop", t)
	return err
}
