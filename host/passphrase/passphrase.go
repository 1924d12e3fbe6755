// Package passphrase reads passphrases and key files for luksmount: without echo from a terminal,
// else one line of stdin per request (as cryptsetup does), so scripts and tests can pipe them.
//
// Every function returns a []byte the caller owns and must Wipe; no passphrase is ever turned into
// a string, and intermediate buffers are zeroed before they are dropped.
package passphrase

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// MaxLen bounds a typed or piped passphrase (cryptsetup's limit for an interactive passphrase).
const MaxLen = 512

// MaxKeyFile bounds a key file (cryptsetup's default --keyfile-size limit, 8 MiB).
const MaxKeyFile = 8 << 20

var (
	// ErrNoInput means stdin ended before a passphrase line: nothing more to try.
	ErrNoInput = errors.New("no passphrase given (stdin is closed)")
	// ErrMismatch means the two entries of a new passphrase differ.
	ErrMismatch = errors.New("the passphrases do not match")
	// ErrEmpty means an empty passphrase was given where one is required.
	ErrEmpty = errors.New("the passphrase is empty")
	// ErrTooLong means a passphrase line exceeds MaxLen.
	ErrTooLong = fmt.Errorf("the passphrase is longer than %d bytes", MaxLen)
)

// Wipe zeroes b.
func Wipe(b []byte) { clear(b) }

// Reader asks for passphrases. On a terminal it prompts on Prompt without echo; otherwise each
// call consumes exactly one line of In (so retries read the following lines).
type Reader struct {
	In     io.Reader // stdin
	Prompt io.Writer // where prompts go (stderr); unused when In is not a terminal

	// isTerminal and readPassword are replaceable in tests.
	isTerminal   func(fd int) bool
	readPassword func(fd int) ([]byte, error)
}

// New returns a Reader on in, prompting on prompt.
func New(in io.Reader, prompt io.Writer) *Reader {
	return &Reader{In: in, Prompt: prompt}
}

func (r *Reader) terminalFD() (int, bool) {
	f, ok := r.In.(*os.File)
	if !ok {
		return 0, false
	}
	isTerm := term.IsTerminal
	if r.isTerminal != nil {
		isTerm = r.isTerminal
	}
	fd := int(f.Fd())
	return fd, isTerm(fd)
}

// IsTerminal reports whether passphrases are typed at a terminal (and so can be asked again).
func (r *Reader) IsTerminal() bool {
	_, ok := r.terminalFD()
	return ok
}

// Read asks for one passphrase with prompt (e.g. "Passphrase for /dev/disk4s1: ").
func (r *Reader) Read(prompt string) ([]byte, error) {
	if fd, ok := r.terminalFD(); ok {
		return r.readTerminal(fd, prompt)
	}
	return ReadLine(r.In)
}

// ReadNew asks for a new passphrase: twice on a terminal (they must match), once from a pipe.
func (r *Reader) ReadNew(prompt, confirm string) ([]byte, error) {
	first, err := r.Read(prompt)
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, ErrEmpty
	}
	if !r.IsTerminal() {
		return first, nil
	}
	second, err := r.Read(confirm)
	if err != nil {
		Wipe(first)
		return nil, err
	}
	defer Wipe(second)
	if !equal(first, second) {
		Wipe(first)
		return nil, ErrMismatch
	}
	return first, nil
}

func (r *Reader) readTerminal(fd int, prompt string) ([]byte, error) {
	if r.Prompt != nil {
		fmt.Fprint(r.Prompt, prompt)
	}
	read := term.ReadPassword
	if r.readPassword != nil {
		read = r.readPassword
	}
	b, err := read(fd)
	if r.Prompt != nil {
		fmt.Fprintln(r.Prompt) // the user's Enter was not echoed
	}
	if err != nil {
		Wipe(b)
		if errors.Is(err, io.EOF) {
			return nil, ErrNoInput
		}
		return nil, fmt.Errorf("cannot read the passphrase from the terminal: %w", err)
	}
	if len(b) > MaxLen {
		Wipe(b)
		return nil, ErrTooLong
	}
	return b, nil
}

// ReadLine reads one line from in, one byte at a time so nothing after the newline is consumed
// or left in a buffer. The line ending (\n or \r\n) is dropped. EOF before any byte is ErrNoInput;
// a last line without a newline is accepted.
func ReadLine(in io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 128)
	var one [1]byte
	defer Wipe(one[:])
	for {
		n, err := in.Read(one[:])
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			if len(buf) == MaxLen+1 { // room for a trailing \r
				Wipe(buf)
				return nil, ErrTooLong
			}
			buf = appendWiping(buf, one[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(buf) == 0 {
				return nil, ErrNoInput
			}
			break
		}
		if err != nil {
			Wipe(buf)
			return nil, fmt.Errorf("cannot read the passphrase from stdin: %w", err)
		}
	}
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf[n-1] = 0
		buf = buf[:n-1]
	}
	if len(buf) > MaxLen {
		Wipe(buf)
		return nil, ErrTooLong
	}
	return buf, nil
}

// appendWiping appends c, zeroing the old backing array when it has to grow.
func appendWiping(buf []byte, c byte) []byte {
	if len(buf) < cap(buf) {
		return append(buf, c)
	}
	nb := make([]byte, len(buf), 2*cap(buf)+1)
	copy(nb, buf)
	Wipe(buf[:cap(buf)])
	return append(nb, c)
}

// ReadKeyFile reads a key file whole (up to MaxKeyFile bytes).
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if st.Size() > MaxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes", path, MaxKeyFile)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("key file %s is empty", path)
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		Wipe(buf)
		return nil, fmt.Errorf("cannot read key file %s: %w", path, err)
	}
	return buf, nil
}

// equal compares in constant time for equal lengths.
func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
