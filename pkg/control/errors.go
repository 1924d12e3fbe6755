package control

import "fmt"

// Code is a typed error the host turns into the right message for the user.
type Code string

// Error codes.
const (
	CodeWrongPassphrase Code = "wrong-passphrase"       // no keyslot opened with the secret
	CodeNotEncrypted    Code = "not-encrypted"          // unlock asked of a device with no LUKS header
	CodeUnsupportedFS   Code = "unsupported-filesystem" // nothing mountable found
	CodeNeedsRepair     Code = "needs-repair"           // filesystem must be checked/repaired first
	CodeDeviceBusy      Code = "device-busy"            // in use (mounted, mapping open, files open)
	CodeIOError         Code = "io-error"               // the disk returned I/O errors
	CodeOutOfMemory     Code = "out-of-memory"          // the KDF needs more memory than the VM has
	CodeCorruptHeader   Code = "corrupt-header"         // LUKS header unreadable
	CodeNotFound        Code = "not-found"              // no such device
	CodeInvalidArgument Code = "invalid-argument"       // a malformed request
	CodeBadState        Code = "bad-state"              // e.g. serve before mount
	CodeUnsupportedOp   Code = "unsupported-operation"  // unknown op
	CodeVersionMismatch Code = "version-mismatch"       // host and agent protocol differ
	CodeInternal        Code = "internal"               // a bug: see the log
	// CodeUnsupportedCrypto: the header is fine but names a cipher or hash the guest lacks.
	CodeUnsupportedCrypto Code = "unsupported-crypto"
)

// Error is a typed error carried over the control channel.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`          // one line for the user
	Detail  string `json:"detail,omitempty"` // tool output for the log
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is makes errors.Is(err, control.ErrWrongPassphrase) match any Error with that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Errorf builds a typed error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is.
var (
	ErrWrongPassphrase = &Error{Code: CodeWrongPassphrase}
	ErrNotEncrypted    = &Error{Code: CodeNotEncrypted}
	ErrUnsupportedFS   = &Error{Code: CodeUnsupportedFS}
	ErrNeedsRepair     = &Error{Code: CodeNeedsRepair}
	ErrDeviceBusy      = &Error{Code: CodeDeviceBusy}
	ErrIOError         = &Error{Code: CodeIOError}
	ErrOutOfMemory     = &Error{Code: CodeOutOfMemory}
	ErrCorruptHeader   = &Error{Code: CodeCorruptHeader}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrBadState        = &Error{Code: CodeBadState}

	ErrUnsupportedCrypto = &Error{Code: CodeUnsupportedCrypto}
)
