package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/supervisor"
)

// The CLI starts `luksmount __supervise` detached, with one end of a socketpair as fd 3, and
// speaks supervisor's hand-off over it (host/supervisor/handoff.go).
const superviseCmd = "__supervise"

// mountDetached starts the supervisor and serves its questions until it is ready or failed.
func (e *env) mountDetached(ctx context.Context, o supervisor.Options) error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("cannot create the supervisor channel: %w", err)
	}
	parentF := os.NewFile(uintptr(fds[0]), "handoff")
	childF := os.NewFile(uintptr(fds[1]), "handoff-child")
	defer parentF.Close()
	exe, err := os.Executable()
	if err != nil {
		childF.Close()
		return fmt.Errorf("cannot find the luksmount executable: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		childF.Close()
		return err
	}
	defer devnull.Close()
	cmd := supervisorCommand(exe, devnull, childF)
	if err := cmd.Start(); err != nil {
		childF.Close()
		return fmt.Errorf("cannot start the supervisor: %w", err)
	}
	childF.Close()
	go cmd.Wait() // reaped if it exits while we wait; normally it outlives us

	// Ctrl-C while waiting closes our end, which tells the supervisor to give up and clean up.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ui := &termUI{e: e, pr: passphrase.New(e.stdin, e.stderr)}
	res, err := supervisor.WaitReady(ctx, parentF, o, ui)
	var fe *supervisor.FailedError
	switch {
	case err == nil:
		e.printReady(*res, false)
		return nil
	case errors.As(err, &fe):
		fmt.Fprintln(e.stderr, fe.Message)
		return &silentError{fe.Code}
	case errors.Is(err, supervisor.ErrSupervisorGone):
		return &exitError{ExitVM, "luksmount: the supervisor exited before the drive was ready; see `luksmount log " + o.Target + "`"}
	}
	return err
}

// supervisorCommand is the detached supervisor: its own session (no terminal, no job control
// signals), stdio on /dev/null, the hand-off as fd 3, and `/` as working directory so it keeps
// no volume busy (daemon(3) does the same chdir).
func supervisorCommand(exe string, devnull, handoff *os.File) *exec.Cmd {
	cmd := exec.Command(exe, superviseCmd)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{handoff}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = os.Environ()
	cmd.Dir = "/"
	return cmd
}

// superviseCommand is the detached supervisor's entry point.
func (e *env) superviseCommand() *ucli.Command {
	return &ucli.Command{
		Name:   superviseCmd,
		Hidden: true,
		Action: func(c *ucli.Context) error {
			conn := os.NewFile(3, "handoff")
			if conn == nil {
				return usagef("%s is internal to luksmount", superviseCmd)
			}
			return supervise(c.Context, conn)
		},
	}
}

func supervise(ctx context.Context, conn *os.File) error {
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := func(ctx context.Context, o supervisor.Options, ui supervisor.UI, ready func(supervisor.Result)) error {
		return supervisor.Run(ctx, o, supervisor.Default(o), ui, ready)
	}
	err := supervisor.Supervise(ctx, conn, run, func(err error) (int, string) { return ExitCode(err), Message(err) })
	if err != nil {
		return &silentError{ExitCode(err)} // nobody reads our stderr; the log has it
	}
	return nil
}
