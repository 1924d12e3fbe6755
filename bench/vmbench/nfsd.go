package vmbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vnet"
	"github.com/luksmount/luksmount/initramfs"
	"github.com/luksmount/luksmount/initramfs/cpio"
)

// mountdPort is rpc.mountd's fixed port inside the nfsd guest.
const mountdPort = 32767

// NFSDExport is the path the nfsd guest exports (where it mounts the disk).
const NFSDExport = "/mnt/data"

// NFSD is a running nfsd-variant VM.
type NFSD struct {
	cmd        *exec.Cmd
	dir        string
	results    string
	NFSPort    int // on the host's 127.0.0.1 (vnet forward or QEMU hostfwd)
	MountPort  int
	StreamPort int
	vn         *vnet.Network // nil on QEMU user net
	done       chan error
}

// NFSDSpec is one nfsd-image VM.
type NFSDSpec struct {
	Dir     string
	Disk    string // "" = none (net mode)
	Machine Machine
	Net     Net
	Pass    []byte
	// Config is the guest's job; Mode and Workload are the caller's, the rest is filled here.
	Config guestspec.Config
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartNFSDBooted is StartNFSD, retried once when the guest says nothing within bootLimit:
// under TCG with two vCPUs on a loaded host the kernel occasionally hangs in early timer setup.
func StartNFSDBooted(ctx context.Context, im Images, spec NFSDSpec, logf func(string, ...any)) (*NFSD, error) {
	const bootLimit = 2 * time.Minute
	for attempt := 1; ; attempt++ {
		n, err := StartNFSD(ctx, im, spec)
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(bootLimit)
		for len(n.Lines()) == 0 && time.Now().Before(deadline) {
			select {
			case err := <-n.done:
				n.done <- err
				return n, nil // exited early: Wait/WaitReady report why
			case <-time.After(250 * time.Millisecond):
			}
		}
		if len(n.Lines()) > 0 {
			return n, nil
		}
		n.cmd.Process.Kill()
		<-n.done
		if attempt == 2 {
			return nil, fmt.Errorf("nfsd VM said nothing within %s, twice; console %s", bootLimit, filepath.Join(spec.Dir, "console.log"))
		}
		logf("  nfsd VM said nothing within %s (early-boot hang under TCG): retrying", bootLimit)
	}
}

// StartNFSD boots the nfsd image in spec.Config.Mode (guestspec.ModeNFSD, ModeLocal or ModeNet),
// on the same machine shape and disk settings as ours (q35, TCG, virtio-blk with the host page
// cache and flushes honoured) and behind spec.Net: host/vnet with its 127.0.0.1 forwards, as
// ours, or QEMU user networking with hostfwd on 127.0.0.1.
func StartNFSD(ctx context.Context, im Images, spec NFSDSpec) (*NFSD, error) {
	dir := spec.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o700) // the vnet socket's directory must be private
	n := &NFSD{dir: dir, results: filepath.Join(dir, guestspec.ResultsPort+".out"), done: make(chan error, 1)}
	cfg := spec.Config
	cfg.Device, cfg.Passphrase, cfg.NFSDThreads, cfg.MountdPort = "/dev/vda", string(spec.Pass), 8, mountdPort
	cfg.ExportOptions = "rw,sync,no_root_squash,insecure,no_subtree_check"
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(dir, "initrd.img")
	if err := appendFiles(initrd, im.NFSD, map[string][]byte{guestspec.ConfigPath: js}); err != nil {
		return nil, err
	}
	os.Remove(n.results)
	qc := qemu.Config{
		Arch: qemu.ArchAMD64, Accel: qemu.AccelTCG, HostOS: runtime.GOOS,
		MemoryMiB: spec.Machine.MemoryMiB, CPUs: spec.Machine.CPUs, Kernel: im.Kernel, Initrd: initrd,
		ConsoleLog: filepath.Join(dir, "console.log"),
		NoControl:  true,
		Serials: []qemu.SerialPort{
			{Name: guestspec.ResultsPort, File: n.results},
			{Name: guestspec.StopPort, Socket: filepath.Join(dir, "stop.sock")},
		},
	}
	if spec.Disk != "" {
		qc.Disks = []qemu.Disk{{Path: spec.Disk}}
	}
	ports, vn, err := spec.Net.attach(&qc, dir, 2049, mountdPort, guestspec.StreamPort)
	if err != nil {
		return nil, fmt.Errorf("nfsd VM network: %w", err)
	}
	n.vn = vn
	n.NFSPort, n.MountPort, n.StreamPort = ports[0], ports[1], ports[2]
	args, err := qc.Args()
	if err != nil {
		n.closeNet()
		return nil, fmt.Errorf("nfsd VM: %w", err)
	}
	n.cmd = exec.Command(qc.Binary(), args...)
	var stderr bytes.Buffer
	n.cmd.Stderr = &stderr
	if err := n.cmd.Start(); err != nil {
		n.closeNet()
		return nil, fmt.Errorf("start nfsd VM: %w", err)
	}
	go func() {
		err := n.cmd.Wait()
		n.closeNet()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		n.done <- err
	}()
	return n, nil
}

func (n *NFSD) closeNet() {
	if n.vn != nil {
		n.vn.Close()
	}
}

// Pid is QEMU's process id.
func (n *NFSD) Pid() int { return n.cmd.Process.Pid }

// Lines is what the guest reported so far.
func (n *NFSD) Lines() Lines { return readLines(n.results) }

// WaitReady waits for the guest's "ready" line.
func (n *NFSD) WaitReady(ctx context.Context) (guestspec.Line, error) {
	for {
		for _, l := range n.Lines() {
			switch l.Kind {
			case "ready":
				return l, nil
			case "error":
				return l, fmt.Errorf("nfsd guest: %s", l.Error)
			}
		}
		select {
		case err := <-n.done:
			n.done <- err
			return guestspec.Line{}, fmt.Errorf("nfsd VM exited before ready (%v); console %s", err, filepath.Join(n.dir, "console.log"))
		case <-ctx.Done():
			return guestspec.Line{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Wait waits for the VM to power off by itself (local mode) and returns its lines.
func (n *NFSD) Wait(ctx context.Context) (Lines, error) {
	select {
	case err := <-n.done:
		lines := n.Lines()
		if err != nil {
			return lines, err
		}
		return lines, lines.Err()
	case <-ctx.Done():
		n.cmd.Process.Kill()
		<-n.done
		return n.Lines(), fmt.Errorf("nfsd VM did not finish: %w", ctx.Err())
	}
}

// Stop tells the guest to stop serving, unmount and power off, and waits for it.
func (n *NFSD) Stop(ctx context.Context) (Lines, error) {
	c, err := net.DialTimeout("unix", filepath.Join(n.dir, "stop.sock"), 5*time.Second)
	if err == nil {
		_, err = c.Write([]byte("stop\n"))
		defer c.Close()
	}
	if err != nil {
		n.cmd.Process.Kill()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lines, werr := n.Wait(ctx)
	return lines, errors.Join(err, werr)
}

// appendFiles writes base followed by an LZ4 cpio (see initramfs.NewLZ4Writer) holding files (the kernel unpacks
// concatenated archives in order, later files winning).
func appendFiles(out, base string, files map[string][]byte) error {
	b, err := os.ReadFile(base)
	if err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	var buf bytes.Buffer
	buf.Write(b)
	zw, err := initramfs.NewLZ4Writer(&buf)
	if err != nil {
		return err
	}
	w := cpio.NewWriter(zw)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, name := range names {
		rel := strings.TrimPrefix(name, "/")
		var parents []string
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if err := w.WriteRecord(cpio.Record{Name: d, Mode: cpio.TypeDir | 0o755}); err != nil {
				return err
			}
		}
		if err := w.WriteRecord(cpio.Record{Name: rel, Mode: cpio.TypeReg | 0o600, Data: files[name]}); err != nil {
			return err
		}
	}
	if err := errors.Join(w.Close(), zw.Close()); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o600)
}
