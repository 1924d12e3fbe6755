// Package command runs the guest's external tools (cryptsetup, blkid, e2fsck, mkfs.ext4) with a
// fixed PATH, feeding secrets on stdin through a pipe so they never appear in argv or the
// environment.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Path is the PATH every tool runs with.
const Path = "/usr/sbin:/usr/bin:/sbin:/bin"

// Cmd is one tool invocation.
type Cmd struct {
	Name string
	Args []string
	Env  []string // added to PATH=Path
	// Stdin is written to the tool's stdin through a pipe, then stdin is closed. It may be a
	// secret: it is neither copied nor logged, and the caller still owns (and wipes) it.
	Stdin []byte
	// Output, if set, also receives stdout and stderr as they arrive, split into lines at \n, \r
	// and \b (progress bars redraw with those), for tools whose progress is their output.
	Output func(line string)
}

// String renders the command line for logs. Stdin is never shown; secrets never go into Args
// (argv is readable in /proc), so the arguments are shown as they are.
func (c Cmd) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// Result is what a tool did. A tool that ran and failed has ExitCode != 0 and a nil error.
type Result struct {
	ExitCode int    // -1 when killed by a signal
	Signal   string // the signal that killed it (the OOM killer sends SIGKILL)
	Stdout   string
	Stderr   string
}

// Runner runs commands; the agent's tests use a fake.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
}

// Exec runs real processes.
type Exec struct {
	// Guard, if set, is read-locked while a process runs so PID 1's reaper leaves it to os/exec.
	Guard interface {
		RLock()
		RUnlock()
	}
	// Debugf, if set, receives each command line and its result (never stdin).
	Debugf func(format string, args ...any)
	// Started, if set, is called with each process's pid once it is started (execve has begun:
	// its /proc argv shows a moment later) and before its stdin is written, so a test can read
	// what /proc shows of it while it waits for input.
	Started func(pid int)
}

// lookPath finds name in Path, not in the agent's own environment (PID 1 gets no PATH).
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(Path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is missing from the guest image (looked in %s)", name, Path)
}

// Run starts c.Name and waits for it.
func (e *Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	if e.Guard != nil {
		e.Guard.RLock()
		defer e.Guard.RUnlock()
	}
	name, err := lookPath(c.Name)
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, name, c.Args...)
	cmd.Env = append([]string{"PATH=" + Path, "LC_ALL=C"}, c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Output != nil {
		lw := &lineWriter{fn: c.Output}
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, lw), io.MultiWriter(&stderr, lw)
		defer lw.flush()
	}

	var pw *os.File
	var wg sync.WaitGroup
	if c.Stdin != nil {
		pr, w, err := os.Pipe()
		if err != nil {
			return Result{}, fmt.Errorf("cannot create pipe for %s: %w", c.Name, err)
		}
		cmd.Stdin, pw = pr, w
		defer pr.Close()
	}
	if e.Debugf != nil {
		e.Debugf("run: %s", c)
	}
	if err := cmd.Start(); err != nil {
		if pw != nil {
			pw.Close()
		}
		return Result{}, fmt.Errorf("cannot run %s: %w", c.Name, err)
	}
	if e.Started != nil {
		e.Started(cmd.Process.Pid)
	}
	if pw != nil {
		cmd.Stdin.(*os.File).Close() // the child has its copy
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw.Write(c.Stdin) // straight from the caller's buffer: no copy to wipe
			pw.Close()        // EOF ends --key-file=-
		}()
	}
	err = cmd.Wait()
	if pw != nil {
		pw.Close() // the child may exit without reading everything
		wg.Wait()
	}
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.ExitCode = ee.ExitCode()
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.ExitCode, r.Signal = -1, signalName(ee)
	default:
		return r, fmt.Errorf("%s failed: %w", c.Name, err)
	}
	if e.Debugf != nil {
		e.Debugf("%s: exit %d %s", c.Name, r.ExitCode, strings.TrimSpace(r.Stderr))
	}
	return r, nil
}
