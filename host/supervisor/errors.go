package supervisor

import (
	"errors"
	"fmt"

	"github.com/luksmount/luksmount/pkg/control"
)

// Errors callers (the CLI's exit codes) branch on.
var (
	ErrBoot            = errors.New("the VM did not start")
	ErrVMDied          = errors.New("the VM stopped unexpectedly")
	ErrHostMount       = errors.New("cannot mount the drive on this computer")
	ErrMountBusy       = errors.New("the mount point is busy")
	ErrUncleanShutdown = errors.New("the guest did not shut down cleanly")
	ErrNoPassphrase    = errors.New("no passphrase given")
)

// PassphraseError is the final wrong-passphrase failure; it matches control.ErrWrongPassphrase.
type PassphraseError struct {
	Target   string
	Attempts int
	KeyFile  bool
	What     string // what was wrong; "" is "passphrase" (VeraCrypt: "password or PIM", ...)
}

func (e *PassphraseError) Error() string {
	if e.KeyFile {
		return fmt.Sprintf("the key file does not unlock %s; nothing was changed", e.Target)
	}
	s := "s"
	if e.Attempts == 1 {
		s = ""
	}
	what := e.What
	if what == "" {
		what = "passphrase"
	}
	return fmt.Sprintf("wrong %s for %s (%d attempt%s); nothing was changed", what, e.Target, e.Attempts, s)
}

func (e *PassphraseError) Is(target error) bool { return target == control.ErrWrongPassphrase }

// MemoryError says the VM was too small for the keyslot's key derivation.
type MemoryError struct {
	Target string
	KDFMiB int64
	VMMiB  int
	Err    error
}

func (e *MemoryError) Error() string {
	need := e.KDFMiB + 256
	if int64(e.VMMiB) >= need {
		need = int64(e.VMMiB) * 2
	}
	return fmt.Sprintf("the VM's %d MiB are not enough to unlock %s: the key slot needs %d MiB for its key derivation; retry with --memory %d",
		e.VMMiB, e.Target, e.KDFMiB, (need+63)/64*64)
}

func (e *MemoryError) Unwrap() error { return e.Err }
