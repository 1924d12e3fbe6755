// Package cli is the luksmount command line: mount (the default), status, stop, log, list, format
// and version, plus the hidden supervise command the detached supervisor runs as. Run returns the
// documented exit code; cmd/luksmount only passes it to os.Exit.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// Run runs the command line args (args[0] is the program name) and returns the exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunContext(context.Background(), args, stdin, stdout, stderr)
}

// RunContext is Run with a context (cancelled on SIGINT/SIGTERM by the caller, or by tests).
func RunContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	app := env.app()
	err := app.RunContext(ctx, reorder(app, args))
	if err == nil {
		return ExitOK
	}
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintln(stderr, Message(err))
	}
	return ExitCode(err)
}

// silentError has been reported already; only its exit code remains.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (e *env) app() *ucli.App {
	onUsage := func(c *ucli.Context, err error, isSub bool) error { return usagef("%v; see `luksmount --help`", err) }
	app := &ucli.App{
		Name:      "luksmount",
		Usage:     "mount LUKS-encrypted and Linux filesystems through a tiny VM",
		UsageText: "luksmount [mount] [options] TARGET [MOUNTPOINT]\n   luksmount status|stop|log|list|format|check|version ...",
		Description: "TARGET is a macOS disk (/dev/disk4s1 or disk4s1), a Linux block device, or a disk image file.\n" +
			"luksmount asks for the passphrase, boots a small Linux VM that unlocks and mounts the drive, and mounts\n" +
			"its files over NFS (macOS: /Volumes/<label>). The command returns once mounted; eject or\n" +
			"`luksmount stop` shuts the VM down cleanly.",
		Reader:          e.stdin,
		Writer:          e.stdout,
		ErrWriter:       e.stderr,
		Flags:           mountFlags(),
		Action:          e.mount,
		HideHelpCommand: true,
		OnUsageError:    onUsage,
		ExitErrHandler:  func(*ucli.Context, error) {},
		Commands: []*ucli.Command{
			e.mountCommand(),
			e.statusCommand(),
			e.stopCommand(),
			e.logCommand(),
			e.listCommand(),
			e.formatCommand(),
			e.checkCommand(),
			e.trimCommand(), e.resizeCommand(),
			e.versionCommand(),
			e.doctorCommand(),
			e.selftestCommand(),
			e.superviseCommand(),
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsage
	}
	return app
}

// reorder moves flags before positional arguments, so `luksmount disk4s1 --no-mount` works
// (urfave/cli stops parsing flags at the first argument).
func reorder(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	flags, rest := app.Flags, args[1:]
	prefix := []string{args[0]}
	if cmd := app.Command(firstWord(args[1:], app.Flags)); cmd != nil {
		// Global flags before the command name stay where they are.
		i := indexOf(args, cmd.Name, cmd.Aliases)
		prefix = append([]string(nil), args[:i+1]...)
		flags, rest = cmd.Flags, args[i+1:]
	}
	var fl, pos []string
	takesValue := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*ucli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			fl = append(fl, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				fl = append(fl, rest[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	out := append(prefix, fl...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

// firstWord returns the first argument that is not a flag (or a root flag's value).
func firstWord(args []string, flags []ucli.Flag) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			name := strings.TrimLeft(a, "-")
			for _, f := range flags {
				if _, isBool := f.(*ucli.BoolFlag); isBool || strings.Contains(name, "=") {
					continue
				}
				for _, n := range f.Names() {
					if n == name {
						i++
					}
				}
			}
			continue
		}
		return a
	}
	return ""
}

func indexOf(args []string, name string, aliases []string) int {
	for i := 1; i < len(args); i++ {
		if args[i] == name {
			return i
		}
		for _, a := range aliases {
			if args[i] == a {
				return i
			}
		}
	}
	return 0
}

// absTarget makes an image path absolute (the session id and lookups use it); a bare disk name
// like disk4s1 or sdb1 is left for blockdev to resolve.
func absTarget(t string) string {
	if t == "" {
		return t
	}
	if strings.Contains(t, "/") {
		if abs, err := filepath.Abs(t); err == nil {
			return abs
		}
		return t
	}
	if _, err := os.Stat(t); err == nil {
		if abs, err := filepath.Abs(t); err == nil {
			return abs
		}
	}
	return t
}
