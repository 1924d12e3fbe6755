package clientvm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/initramfs"
	"github.com/luksmount/luksmount/initramfs/cpio"
)

// Config says how to boot the client VM.
type Config struct {
	Arch     string // amd64 or arm64
	Kernel   string // vmlinuz
	Image    string // the nfsclient initramfs
	Dir      string // work dir: console log, results, the combined initrd
	Spec     Spec
	Manifest []byte // handed to verify-manifest
	// Files are extra files (absolute path -> content) added to the image, for other inits
	// built on the nfsclient variant (the benchmark's).
	Files map[string][]byte
	// Ports are extra virtio-serial ports whose output is captured to Dir/<name>.out.
	Ports   []string
	Memory  int // MiB; 0 = 512
	Timeout time.Duration
	// OnLine, if set, sees each line as the client writes it (crash tests act on "durable" lines
	// while the client runs). It runs on a polling goroutine.
	OnLine func(Line)
	// Kill, if set, stops the client VM early when closed (after the server was killed).
	Kill <-chan struct{}
}

// Report is what the client VM said.
type Report struct {
	Lines    []Line
	Results  []json.RawMessage
	Manifest string
	Passed   int
	Failed   int
	Done     bool
	Console  string // tail, for failures
	Duration time.Duration
}

// Errors reports the client's error lines.
func (r *Report) Errors() []string {
	var e []string
	for _, l := range r.Lines {
		if l.Kind == "error" {
			e = append(e, l.Error)
		}
	}
	return e
}

// Run boots the client VM and waits for it to power off.
func Run(ctx context.Context, c Config) (*Report, error) {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Memory == 0 {
		c.Memory = 512
	}
	initrd := filepath.Join(c.Dir, "client-initrd.img")
	if err := combinedInitrd(initrd, c.Image, c.Spec, c.Manifest, c.Files); err != nil {
		return nil, err
	}
	results := filepath.Join(c.Dir, "client-results.jsonl")
	console := filepath.Join(c.Dir, "client-console.log")
	os.Remove(results)
	qc := qemuConfig(c, initrd, results, console)
	args, err := qc.Args()
	if err != nil {
		return nil, fmt.Errorf("client VM: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qc.Binary(), args...)
	cmd.SysProcAttr = dieWithParent() // a timed-out test must not leave a VM behind
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start client VM: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	rep := &Report{}
	tl := &tailer{path: results}
	var runErr error
	killed := false
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	kill := c.Kill
loop:
	for {
		select {
		case runErr = <-exited:
			break loop
		case <-kill:
			cmd.Process.Kill()
			kill, killed = nil, true
		case <-tick.C:
			for _, l := range tl.next() {
				rep.add(l)
				if c.OnLine != nil {
					c.OnLine(l)
				}
			}
		}
	}
	for _, l := range tl.next() {
		rep.add(l)
		if c.OnLine != nil {
			c.OnLine(l)
		}
	}
	rep.Duration = time.Since(start)
	rep.Console = tail(console, 40)
	if ctx.Err() != nil && c.Kill == nil {
		return rep, fmt.Errorf("client VM did not finish within %s; console tail:\n%s", c.Timeout, rep.Console)
	}
	if runErr != nil && !killed {
		return rep, fmt.Errorf("client VM: %w: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return rep, nil
}

func (r *Report) add(l Line) {
	r.Lines = append(r.Lines, l)
	switch l.Kind {
	case "result":
		r.Results = append(r.Results, l.Result)
	case "manifest":
		r.Manifest = l.Manifest
	case "done":
		r.Done, r.Passed, r.Failed = true, l.Passed, l.Failed
	}
}

// tailer returns the complete new lines of a growing file.
type tailer struct {
	path string
	off  int64
	part []byte
}

func (t *tailer) next() []Line {
	f, err := os.Open(t.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	t.off += int64(len(b))
	t.part = append(t.part, b...)
	var out []Line
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		var l Line
		if json.Unmarshal(t.part[:i], &l) == nil {
			out = append(out, l)
		}
		t.part = t.part[i+1:]
	}
	return out
}

// qemuConfig is the client VM: no agent, QEMU user networking (the host's loopback is HostAlias),
// the results port and c.Ports captured to files.
func qemuConfig(c Config, initrd, results, console string) qemu.Config {
	ports := []qemu.SerialPort{{Name: ResultsPort, File: results}}
	for _, p := range c.Ports {
		ports = append(ports, qemu.SerialPort{Name: p, File: filepath.Join(c.Dir, p+".out")})
	}
	return qemu.Config{
		Arch: qemu.Arch(c.Arch), Accel: qemu.AccelTCG, HostOS: runtime.GOOS,
		MemoryMiB: c.Memory, CPUs: 1, Kernel: c.Kernel, Initrd: initrd, ConsoleLog: console,
		NoControl: true, UserNet: &qemu.UserNet{}, Serials: ports,
	}
}

// combinedInitrd writes the client image followed by a second archive with the spec, the
// manifest and files (see WriteInitrd).
func combinedInitrd(out, image string, spec Spec, manifest []byte, files map[string][]byte) error {
	js, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	all := map[string][]byte{SpecPath: js}
	if manifest != nil {
		all[ManifestPath] = manifest
	}
	for name, data := range files {
		all[name] = data
	}
	return WriteInitrd(out, image, all)
}

// WriteInitrd writes out: image followed by a second LZ4 cpio (see initramfs.NewLZ4Writer) holding files (absolute path ->
// content; mode 0644, 0755 for the paths in execs), each with its parent directories below the
// top level (those exist in every image). The kernel unpacks concatenated archives in order, so
// these files are added to the image's, or replace them (an /init).
func WriteInitrd(out, image string, files map[string][]byte, execs ...string) error {
	base, err := os.ReadFile(image)
	if err != nil {
		return fmt.Errorf("guest image: %w (build it with `make images`)", err)
	}
	var buf bytes.Buffer
	buf.Write(base)
	zw, err := initramfs.NewLZ4Writer(&buf)
	if err != nil {
		return err
	}
	w := cpio.NewWriter(zw)
	var recs []cpio.Record
	dirs := map[string]bool{}
	for name, data := range files {
		rel := strings.TrimPrefix(name, "/")
		for d := path.Dir(rel); strings.Contains(d, "/") && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			recs = append(recs, cpio.Record{Name: d, Mode: cpio.TypeDir | 0o755})
		}
		mode := uint32(0o644)
		if slices.Contains(execs, name) {
			mode = 0o755
		}
		recs = append(recs, cpio.Record{Name: rel, Mode: cpio.TypeReg | mode, Data: data})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			return err
		}
	}
	if err := errors.Join(w.Close(), zw.Close()); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
