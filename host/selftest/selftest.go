// Package selftest is `luksmount selftest`: the one command that accepts a release on a
// machine. It makes a small temporary LUKS2 + ext4 image, mounts it the way a user would
// (macOS: /Volumes through mount_nfs; Linux: mount -t nfs where the kernel has an NFS client,
// else serve-only with a user-space NFS client), writes, reads back, renames and deletes files
// (accented and emoji names included) with checksums, unmounts the way Finder's Eject does
// (serve-only: stop), checks that the session ended cleanly and reports the timeline. It drives
// the luksmount binary itself as a user would, and removes everything it made, also when
// interrupted.
package selftest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Options for Run.
type Options struct {
	Exe       string // the luksmount binary to drive (os.Executable)
	Accel     string // passed to mount and format ("auto" by default)
	ServeOnly bool   // never mount on the host, even where it could
	Log       io.Writer
}

// Step is one line of the timeline.
type Step struct {
	Name string        `json:"name"`
	At   time.Duration `json:"at"`
	Took time.Duration `json:"took"`
	Err  string        `json:"error,omitempty"`
	Note string        `json:"note,omitempty"`
}

// Report is what Run found.
type Report struct {
	Mode      string   `json:"mode"` // "mounted" or "serve-only"
	Steps     []Step   `json:"steps"`
	WriteMBps float64  `json:"write_mbps"`
	ReadMBps  float64  `json:"read_mbps"`
	Failed    []string `json:"failed,omitempty"`
	Leftover  []string `json:"leftover,omitempty"` // what cleanup could not remove
}

// OK reports whether every step passed.
func (r *Report) OK() bool { return len(r.Failed) == 0 && len(r.Leftover) == 0 }

// The files written, by name: accents (NFC), emoji, CJK, a space, and one big enough to time.
var smallNames = []string{"Café crème.txt", "emoji 🙂🚀.txt", "日本語ファイル.txt", "plain.txt"}

const (
	bigName    = "throughput.bin"
	bigSize    = 16 << 20
	renameFrom = "Café crème.txt"
	renameTo   = "Renamé ✓ déjà.txt"
	removeName = "emoji 🙂🚀.txt"
	imageSize  = "96M"
)

type runner struct {
	o      Options
	start  time.Time
	r      *Report
	dir    string
	img    string
	pass   []byte
	served bool
	sess   session
}

// session is the part of `luksmount status --json` selftest reads.
type session struct {
	ID            string `json:"id"`
	Target        string `json:"target"`
	Mountpoint    string `json:"mountpoint"`
	NFSAddress    string `json:"nfs_address"`
	Export        string `json:"export"`
	State         string `json:"state"`
	VMPid         int    `json:"vm_pid"`
	SupervisorPid int    `json:"supervisor_pid"`
	Accel         string `json:"accel"`
}

// Run runs the self-test. Cancelling ctx (SIGINT) stops at the next step and still cleans up.
func Run(ctx context.Context, o Options) *Report {
	if o.Accel == "" {
		o.Accel = "auto"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	rn := &runner{o: o, start: time.Now(), r: &Report{}}
	defer rn.cleanup()
	rn.r.Mode = "serve-only"
	if !o.ServeOnly && canMount() {
		rn.r.Mode = "mounted"
	}
	steps := []struct {
		name string
		f    func(context.Context) (string, error)
	}{
		{"prepare", rn.prepare},
		{"format", rn.format},
		{"mount", rn.mount},
		{"files", rn.files},
		{"eject", rn.eject},
		{"clean end", rn.cleanEnd},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			rn.fail(s.name, 0, "", fmt.Errorf("interrupted: %w", err))
			break
		}
		t0 := time.Now()
		note, err := within(ctx, stepTimeout, s.f)
		if err != nil {
			rn.fail(s.name, time.Since(t0), note, err)
			break
		}
		rn.step(s.name, time.Since(t0), note)
	}
	return rn.r
}

const stepTimeout = 5 * time.Minute

// within runs f but gives up when ctx ends or after d: a hung NFS call must not keep the
// self-test (and its cleanup) from finishing. The cleanup's stop ends the hung call.
func within(ctx context.Context, d time.Duration, f func(context.Context) (string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type res struct {
		note string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		n, err := f(ctx)
		ch <- res{n, err}
	}()
	select {
	case r := <-ch:
		return r.note, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("gave up: %w", ctx.Err())
	}
}

func (rn *runner) step(name string, took time.Duration, note string) {
	rn.r.Steps = append(rn.r.Steps, Step{Name: name, At: time.Since(rn.start) - took, Took: took, Note: note})
	fmt.Fprintf(rn.o.Log, "selftest: %s ok (%s) %s\n", name, took.Round(10*time.Millisecond), note)
}

func (rn *runner) fail(name string, took time.Duration, note string, err error) {
	rn.r.Steps = append(rn.r.Steps, Step{Name: name, At: time.Since(rn.start) - took, Took: took, Note: note, Err: err.Error()})
	rn.r.Failed = append(rn.r.Failed, name+": "+err.Error())
	fmt.Fprintf(rn.o.Log, "selftest: %s FAILED: %v\n", name, err)
}

func (rn *runner) prepare(context.Context) (string, error) {
	// Short path: macOS unix sockets live near the image's session and sun_path is 104 bytes.
	dir, err := os.MkdirTemp("", "lmself")
	if err != nil {
		return "", err
	}
	rn.dir = dir
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	rn.img = filepath.Join(dir, "selftest.img")
	// A random passphrase, held in memory only: it reaches luksmount through a stdin pipe.
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	rn.pass = make([]byte, base64.RawURLEncoding.EncodedLen(len(raw)))
	base64.RawURLEncoding.Encode(rn.pass, raw)
	clear(raw)
	return "in " + dir, nil
}

// lm runs the luksmount binary; stdin gets the passphrase line when withPass.
func (rn *runner) lm(ctx context.Context, withPass bool, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rn.o.Exe, args...)
	cmd.Dir = rn.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var line []byte
	if withPass {
		line = append(append(make([]byte, 0, len(rn.pass)+1), rn.pass...), '\n')
		cmd.Stdin = bytes.NewReader(line)
	}
	err := cmd.Run()
	clear(line)
	s := strings.TrimSpace(out.String())
	if err != nil {
		return s, fmt.Errorf("luksmount %s: %v: %s", strings.Join(args, " "), err, lastLine(s))
	}
	return s, nil
}

func (rn *runner) format(ctx context.Context) (string, error) {
	// A real argon2id KDF at a cost that keeps the test quick under TCG.
	_, err := rn.lm(ctx, true, "format", "--size", imageSize, "--label", "SelfTest", "--pbkdf-memory", "32768", "--iter-time", "250", "--accel", rn.o.Accel, rn.img)
	return "LUKS2 + ext4, " + imageSize, err
}

func (rn *runner) mount(ctx context.Context) (string, error) {
	args := []string{"--accel", rn.o.Accel}
	switch {
	case rn.r.Mode == "serve-only":
		args = append(args, "--no-mount", rn.img)
	case runtime.GOOS == "linux":
		mp := filepath.Join(rn.dir, "mnt")
		if err := os.Mkdir(mp, 0o755); err != nil {
			return "", err
		}
		args = append(args, rn.img, mp)
	default: // macOS: /Volumes/<label>, as a user's mount
		args = append(args, rn.img)
	}
	_, err := rn.lm(ctx, true, args...)
	rn.served = true // even a failed mount may have left a session: cleanup stops it
	if err != nil {
		return "", err
	}
	s, err := rn.status(ctx)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", errors.New("luksmount returned but `status` shows no session for the image")
	}
	rn.sess = *s
	if rn.r.Mode == "mounted" {
		if s.Mountpoint == "" {
			return "", fmt.Errorf("session %s is %s with no mount point", s.ID, s.State)
		}
		return fmt.Sprintf("%s at %s (accel %s)", s.State, s.Mountpoint, s.Accel), nil
	}
	if s.NFSAddress == "" {
		return "", fmt.Errorf("session %s serves no NFS address", s.ID)
	}
	return fmt.Sprintf("%s at nfs://%s%s (accel %s)", s.State, s.NFSAddress, s.Export, s.Accel), nil
}

func (rn *runner) status(ctx context.Context) (*session, error) {
	out, err := rn.lm(ctx, false, "status", "--json")
	if err != nil {
		return nil, err
	}
	var ss []session
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		return nil, fmt.Errorf("status --json: %v", err)
	}
	for i := range ss {
		if ss[i].Target == rn.img {
			return &ss[i], nil
		}
	}
	return nil, nil
}

func (rn *runner) fs() (FS, error) {
	if rn.r.Mode == "mounted" {
		return DirFS(rn.sess.Mountpoint), nil
	}
	return DialNFS(rn.sess.NFSAddress, rn.sess.Export)
}

func (rn *runner) files(ctx context.Context) (string, error) {
	fsys, err := rn.fs()
	if err != nil {
		return "", err
	}
	defer fsys.Close()
	return rn.filesOn(ctx, fsys)
}

func (rn *runner) filesOn(ctx context.Context, fsys FS) (string, error) {
	want := map[string][32]byte{}
	for _, n := range smallNames {
		data := []byte(strings.Repeat(n+"\n", 1000))
		if err := fsys.WriteFile(n, data); err != nil {
			return "", fmt.Errorf("write %q: %w", n, err)
		}
		want[n] = sha256.Sum256(data)
	}
	big := make([]byte, bigSize)
	rand.Read(big)
	t0 := time.Now()
	if err := fsys.WriteFile(bigName, big); err != nil {
		return "", fmt.Errorf("write %s: %w", bigName, err)
	}
	rn.r.WriteMBps = mbps(bigSize, time.Since(t0))
	want[bigName] = sha256.Sum256(big)
	if err := ctx.Err(); err != nil {
		return "", err
	}
	t0 = time.Now()
	got, err := fsys.ReadFile(bigName)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", bigName, err)
	}
	rn.r.ReadMBps = mbps(len(got), time.Since(t0))
	for n, sum := range want {
		data := got
		if n != bigName {
			if data, err = fsys.ReadFile(n); err != nil {
				return "", fmt.Errorf("read back %q: %w", n, err)
			}
		}
		if sha256.Sum256(data) != sum {
			return "", fmt.Errorf("%q read back differs from what was written (%d bytes)", n, len(data))
		}
	}
	if err := fsys.Rename(renameFrom, renameTo); err != nil {
		return "", fmt.Errorf("rename %q to %q: %w", renameFrom, renameTo, err)
	}
	if data, err := fsys.ReadFile(renameTo); err != nil || sha256.Sum256(data) != want[renameFrom] {
		return "", fmt.Errorf("%q after the rename: %v (checksum must match the original)", renameTo, err)
	}
	if err := fsys.Remove(removeName); err != nil {
		return "", fmt.Errorf("remove %q: %w", removeName, err)
	}
	for n, want := range map[string]bool{renameTo: true, bigName: true, "plain.txt": true, "日本語ファイル.txt": true, renameFrom: false, removeName: false} {
		got, err := fsys.Exists(n)
		if err != nil {
			return "", fmt.Errorf("look up %q: %w", n, err)
		}
		if got != want {
			return "", fmt.Errorf("%q exists=%v after rename and remove; want %v", n, got, want)
		}
	}
	return fmt.Sprintf("%d files, %d MiB checked; write %.1f MB/s, read %.1f MB/s", len(want), bigSize>>20, rn.r.WriteMBps, rn.r.ReadMBps), nil
}

func mbps(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

// eject unmounts as Finder's Eject does (DiskArbitration's unmount of the volume, which is what
// `diskutil unmount` asks for); luksmount's unmount watch then stops the session. Serve-only has
// no host mount: `luksmount stop` is the user's way out.
func (rn *runner) eject(ctx context.Context) (string, error) {
	switch {
	case rn.r.Mode == "serve-only":
		_, err := rn.lm(ctx, false, "stop", rn.img)
		return "luksmount stop", err
	case runtime.GOOS == "darwin":
		out, err := exec.CommandContext(ctx, "diskutil", "unmount", rn.sess.Mountpoint).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("diskutil unmount %s: %v: %s", rn.sess.Mountpoint, err, lastLine(string(out)))
		}
		return "diskutil unmount (as Finder's Eject)", nil
	default:
		out, err := exec.CommandContext(ctx, "umount", rn.sess.Mountpoint).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("umount %s: %v: %s", rn.sess.Mountpoint, err, lastLine(string(out)))
		}
		return "umount", nil
	}
}

// cleanEnd waits for the session to go, checks its processes are gone and that its log says the
// guest synced, unmounted and closed the volume.
func (rn *runner) cleanEnd(ctx context.Context) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := rn.status(ctx)
		if err != nil {
			return "", err
		}
		if s == nil {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("session %s still %s 60 s after the eject", s.ID, s.State)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	rn.served = false
	// The session leaves `status` before its supervisor has exited: give both a moment.
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	waitGone(pctx, rn.sess.VMPid, rn.sess.SupervisorPid)
	cancel()
	for _, p := range []struct {
		what string
		pid  int
	}{{"QEMU", rn.sess.VMPid}, {"supervisor", rn.sess.SupervisorPid}} {
		if alive(p.pid) {
			return "", fmt.Errorf("%s (pid %d) still running 20 s after the session ended", p.what, p.pid)
		}
	}
	log, err := rn.lm(ctx, false, "log", rn.img)
	if err != nil {
		return "", err
	}
	if !strings.Contains(log, "synced=true unmounted=true closed=true") {
		return "", fmt.Errorf("the session log does not say synced=true unmounted=true closed=true; last line: %s", lastLine(log))
	}
	if rn.r.Mode == "mounted" {
		if _, err := os.Stat(filepath.Join(rn.sess.Mountpoint, bigName)); err == nil {
			return "", fmt.Errorf("%s still shows the files after the eject", rn.sess.Mountpoint)
		}
	}
	return "log: synced=true unmounted=true closed=true; QEMU and supervisor gone", nil
}

// cleanup stops a session left running (interrupt, failure), then removes the image and its
// directory and wipes the passphrase. It runs with its own deadline: ctx may be cancelled.
func (rn *runner) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rn.served {
		if s, _ := rn.status(ctx); s != nil {
			if _, err := rn.lm(ctx, false, "stop", "--force", rn.img); err != nil {
				rn.r.Leftover = append(rn.r.Leftover, "session "+s.ID+": "+err.Error())
			}
			waitGone(ctx, s.VMPid, s.SupervisorPid)
		}
	}
	if rn.dir != "" {
		if err := os.RemoveAll(rn.dir); err != nil {
			rn.r.Leftover = append(rn.r.Leftover, rn.dir+": "+err.Error())
		}
	}
	clear(rn.pass)
}

func waitGone(ctx context.Context, pids ...int) {
	for _, p := range pids {
		for alive(p) && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// canMount reports whether a user-visible host mount is possible: always on macOS (mount_nfs),
// on Linux when the kernel has an NFS client and we are root (mount -t nfs needs it).
func canMount() bool {
	switch runtime.GOOS {
	case "darwin":
		return true
	case "linux":
		if os.Geteuid() != 0 {
			return false
		}
		b, err := os.ReadFile("/proc/filesystems")
		return err == nil && bytes.Contains(b, []byte("\tnfs\n"))
	}
	return false
}

// WriteText prints the report: the timeline, throughput and what failed.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "luksmount selftest (%s)\n", r.Mode)
	for _, s := range r.Steps {
		status := "ok  "
		if s.Err != "" {
			status = "FAIL"
		}
		fmt.Fprintf(w, "  %7.2fs  %-9s %s %6.2fs  %s\n", s.At.Seconds(), s.Name, status, s.Took.Seconds(), s.Note)
		if s.Err != "" {
			fmt.Fprintf(w, "            %s\n", s.Err)
		}
	}
	if r.WriteMBps > 0 {
		fmt.Fprintf(w, "throughput: write %.1f MB/s, read %.1f MB/s (%d MiB file)\n", r.WriteMBps, r.ReadMBps, bigSize>>20)
	}
	for _, l := range r.Leftover {
		fmt.Fprintf(w, "left behind: %s\n", l)
	}
	if r.OK() {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintf(w, "FAIL: %s\n", strings.Join(append(append([]string(nil), r.Failed...), r.Leftover...), "; "))
	}
}
