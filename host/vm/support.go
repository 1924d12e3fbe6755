package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/control"
)

// prepareDir creates dir 0700 (reporting true), or checks that an existing one is a private
// directory: the sockets in it give control of the VM.
func prepareDir(dir string) (created bool, err error) {
	if err := os.Mkdir(dir, 0o700); err == nil {
		return true, nil
	} else if !errors.Is(err, os.ErrExist) {
		return false, fmt.Errorf("cannot create runtime directory %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return false, fmt.Errorf("cannot use runtime directory %s: %w", dir, err)
	}
	if !st.IsDir() || st.Mode().Perm()&0o077 != 0 || !ownedByMe(st) {
		return false, fmt.Errorf("runtime directory %s must be a directory owned by this user with mode 0700 (it is %s)", dir, st.Mode())
	}
	return false, nil
}

// FindQEMU locates a QEMU binary: in PATH, else where Homebrew and MacPorts install it (sudo on
// macOS resets PATH to one without them).
func FindQEMU(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/opt/homebrew/bin", "/usr/local/bin", "/opt/local/bin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	hint := "apt-get install qemu-system-x86 qemu-system-arm"
	if strings.Contains(os.Getenv("PATH"), "homebrew") || fileExists("/opt/homebrew") || fileExists("/usr/local/Homebrew") {
		hint = "brew install qemu"
	}
	return "", fmt.Errorf("%w: %s is not in PATH, /opt/homebrew/bin, /usr/local/bin or /opt/local/bin; install it (%s)", ErrQEMUNotFound, name, hint)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

const consoleTailBytes = 8 << 10

// readConsoleTail returns the end of the console log.
func (v *VM) readConsoleTail() string {
	f, err := os.Open(v.cfg.ConsoleLog)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > consoleTailBytes {
		f.Seek(st.Size()-consoleTailBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, consoleTailBytes))
	return string(b)
}

// lastLine is the last non-empty line of s, without control characters.
func lastLine(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, l)
		}
	}
	return ""
}

// panicked reports whether the console shows a kernel panic (which -no-reboot turns into exit 0).
func panicked(console string) bool { return strings.Contains(console, "Kernel panic - not syncing") }

// exitError describes QEMU's exit in one line: what happened, QEMU's own complaint, the guest's
// last console line and where the console log is (if it survives the runtime directory).
func (v *VM) exitError(what string) error {
	msg := what
	if l := lastLine(v.stderr.String()); l != "" {
		msg += ": " + l
	}
	console := v.consoleT
	if console == "" {
		console = v.readConsoleTail()
	}
	if l := lastLine(console); l != "" {
		msg += fmt.Sprintf("; last console line: %q", l)
	}
	if v.spec.ConsoleLog != "" {
		msg += "; see " + v.spec.ConsoleLog
	}
	return fmt.Errorf("%w: %s", ErrExited, msg)
}

func (v *VM) stderrHint() string {
	if l := lastLine(v.stderr.String()); l != "" {
		return " (qemu: " + l + ")"
	}
	return ""
}

// Ready waits for the agent to answer Hello: the guest has booted. If QEMU exits first, or ctx ends,
// the error says so with the console's last line.
func (v *VM) Ready(ctx context.Context, hostVersion string) (*control.HelloReply, error) {
	type result struct {
		h   *control.HelloReply
		err error
	}
	ch := make(chan result, 1)
	go func() {
		h, err := v.ctl.Hello(ctx, hostVersion)
		ch <- result{h, err}
	}()
	select {
	case r := <-ch:
		if r.err == nil {
			v.logf("agent %s ready after %s (kernel %s)", r.h.AgentVersion, since(v.start), r.h.Kernel)
			return r.h, nil
		}
		if errors.Is(r.err, control.ErrClosed) && v.waitExit(2*time.Second) {
			return nil, v.bootError()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the VM did not become ready within %s; last console line: %q%s", since(v.start), lastLine(v.Console()), v.seeConsole())
		}
		return nil, r.err
	case <-v.done:
		return nil, v.bootError()
	}
}

func (v *VM) bootError() error {
	return fmt.Errorf("%w during boot: %s%s", ErrExited, orUnknown(lastLine(v.Console())), v.seeConsole())
}

func orUnknown(s string) string {
	if s == "" {
		return "(the console is empty)"
	}
	return s
}

func (v *VM) seeConsole() string {
	if v.spec.ConsoleLog != "" {
		return "; see " + v.spec.ConsoleLog
	}
	return ""
}

// ConsoleTail is the last n lines of the console (n <= 0: all that is kept).
func (v *VM) ConsoleTail(n int) string {
	s := strings.TrimRight(v.Console(), "\n")
	if n <= 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyFile copies src to dst (0600), best effort: it only preserves a console log.
func copyFile(src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		return
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	io.Copy(out, in)
	out.Close()
}

// checkRunWithUser makes sure bin can drop root itself (-run-with user=, QEMU 9.1+), so an old
// QEMU fails with a message rather than an option error, and never silently keeps root.
func checkRunWithUser(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return fmt.Errorf("cannot run %s --version: %w", bin, err)
	}
	v, err := qemu.ParseVersion(string(out))
	if err != nil {
		return err
	}
	if v.Less(qemu.MinRunWithUserVersion) {
		return fmt.Errorf("%s is QEMU %s; luksmount needs QEMU %s or newer to run it without root (-run-with user=); upgrade it (brew upgrade qemu)", bin, v, qemu.MinRunWithUserVersion)
	}
	return nil
}
