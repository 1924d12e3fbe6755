package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

// Exit codes. They are documented in the README: scripts and tests branch on them.
const (
	ExitOK              = 0
	ExitFailure         = 1  // anything not listed below
	ExitUsage           = 2  // bad command line
	ExitWrongPassphrase = 3  // wrong passphrase or key file (all attempts), or none given
	ExitNotFound        = 4  // no such target, or no session matches
	ExitBusy            = 5  // the target is in use (another session, or mounted on the host)
	ExitPermission      = 6  // not allowed to open the target: run with sudo
	ExitMemory          = 7  // the VM has too little memory for the key derivation
	ExitFilesystem      = 8  // corrupt LUKS header, unsupported or damaged filesystem
	ExitVM              = 9  // the VM did not start, or died (guest images missing, QEMU failed)
	ExitMount           = 10 // the host could not mount the NFS export
	ExitHasData         = 11 // format refused: the target holds data (use --force)
	ExitStopRefused     = 12 // stop refused: the mount point is busy (close files or use --force)
	ExitInterrupted     = 130
)

// usageError is a command-line mistake.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries an exit code decided elsewhere (the detached supervisor).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode maps an error to the documented exit code.
func ExitCode(err error) int {
	var ue *usageError
	var ee *exitError
	var se *silentError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, control.ErrWrongPassphrase), errors.Is(err, supervisor.ErrNoPassphrase),
		errors.Is(err, passphrase.ErrNoInput), errors.Is(err, passphrase.ErrMismatch), errors.Is(err, passphrase.ErrEmpty):
		return ExitWrongPassphrase
	case errors.Is(err, control.ErrOutOfMemory):
		return ExitMemory
	case errors.Is(err, blockdev.ErrBusy), errors.Is(err, blockdev.ErrInUse), errors.Is(err, session.ErrBusy),
		errors.Is(err, control.ErrDeviceBusy):
		return ExitBusy
	case errors.Is(err, supervisor.ErrMountBusy):
		return ExitStopRefused
	case errors.Is(err, errHasData):
		return ExitHasData
	case errors.Is(err, fs.ErrPermission):
		return ExitPermission
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, session.ErrNoSession), errors.Is(err, blockdev.ErrNotDevice),
		errors.Is(err, control.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, luksheader.ErrCorrupt), errors.Is(err, control.ErrCorruptHeader),
		errors.Is(err, luksheader.ErrUnsupported), errors.Is(err, control.ErrUnsupportedCrypto),
		errors.Is(err, control.ErrUnsupportedFS), errors.Is(err, control.ErrNeedsRepair),
		errors.Is(err, control.ErrNotEncrypted), errors.Is(err, control.ErrIOError):
		return ExitFilesystem
	case errors.Is(err, supervisor.ErrBoot), errors.Is(err, supervisor.ErrVMDied), errors.Is(err, images.ErrNotFound),
		errors.Is(err, control.ErrClosed), errors.Is(err, control.ErrVersion):
		return ExitVM
	case errors.Is(err, supervisor.ErrHostMount):
		return ExitMount
	}
	return ExitFailure
}

// Message is the one line printed for err: what happened and what to do.
func Message(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled):
		msg = "interrupted; nothing is left running"
	case errors.Is(err, supervisor.ErrVMDied):
		msg += "; see `luksmount log` for what happened"
	case errors.Is(err, supervisor.ErrBoot):
		msg += "; see `luksmount log` (the VM console is in the session log directory)"
	case errors.Is(err, control.ErrNeedsRepair):
		msg += "; check the filesystem with e2fsck on Linux (or mount read-only with -o ro)"
	case errors.Is(err, session.ErrNoSession):
		msg += "; `luksmount status` lists running sessions"
	case errors.Is(err, supervisor.ErrMountBusy):
		msg += "; close the files open on it, or use `luksmount stop --force`"
	}
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
	return "luksmount: " + msg
}
