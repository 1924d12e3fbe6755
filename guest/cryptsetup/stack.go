package cryptsetup

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// OpenOptions are the choices `cryptsetup open` takes from the user.
type OpenOptions struct {
	ReadOnly bool
	// AllowDiscards passes TRIM through dm-crypt: the drive then shows which blocks are free.
	AllowDiscards bool
	// Header is a detached LUKS header's device (--header): dev then holds only the encrypted
	// data. cryptsetup reads it under a read lock and only writes it to auto-repair one damaged
	// LUKS2 copy, which fails harmlessly on a read-only device and the good copy is used
	// (v2.6.1 lib/luks2/luks2_json_metadata.c LUKS2_hdr_read, luks2_disk_metadata.c).
	Header string
}

// OpenArgsFor builds `cryptsetup open`. The volume key stays in the dm table rather than the
// kernel keyring (--disable-keyring) so `cryptsetup resize` can grow the mapping without asking
// for the passphrase again; inside the single-purpose guest both are kernel memory only root sees.
func OpenArgsFor(dev string, o OpenOptions) []string {
	return OpenArgsNamed(dev, MapperName, o)
}

// OpenArgsNamed is OpenArgsFor with the mapping called name (further LUKS members of a stack).
func OpenArgsNamed(dev, name string, o OpenOptions) []string {
	args := []string{"open", "--type", "luks", dev, name, "--key-file=-", "--disable-keyring"}
	if o.ReadOnly {
		args = append(args, "--readonly")
	}
	if o.AllowDiscards {
		args = append(args, "--allow-discards")
	}
	if o.Header != "" {
		args = append(args, "--header", o.Header)
	}
	return args
}

// ResizeArgs builds `cryptsetup resize`: the mapping grows to fill its (grown) device.
func ResizeArgs() []string { return []string{"resize", MapperName} }

// Resize grows the open mapping to its device's size.
func (t *Tool) Resize(ctx context.Context) error {
	r, err := t.run(ctx, ResizeArgs(), nil)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("grow the mapping "+MapperName, r, true, Memory{})
}

// OpenNamed unlocks dev as /dev/mapper/name (see Open).
func (t *Tool) OpenNamed(ctx context.Context, dev, name string, o OpenOptions, secret []byte, hasMagic bool) error {
	if len(secret) == 0 {
		return control.Errorf(control.CodeInvalidArgument, "empty passphrase: nothing to unlock %s with", dev)
	}
	r, err := t.run(ctx, OpenArgsNamed(dev, name, o), secret)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("unlock "+dev, r, hasMagic, t.memory(ctx, r, dev))
}

// CloseNamed closes /dev/mapper/name.
func (t *Tool) CloseNamed(ctx context.Context, name string) error {
	r, err := t.run(ctx, []string{"close", name}, nil)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("close "+name, r, true, Memory{})
}

// OtherOpenArgs builds `cryptsetup open` for BitLocker (bitlk) and VeraCrypt/TrueCrypt (tcrypt).
// The passphrase (or BitLocker recovery key) comes on stdin, as for LUKS.
func OtherOpenArgs(dev string, c control.Crypt, o OpenOptions) ([]string, error) {
	var args []string
	switch c.Type {
	case "bitlk":
		if c.PIM != 0 || c.SecretPIM || c.Hidden || c.TrueCrypt {
			return nil, control.Errorf(control.CodeInvalidArgument, "--pim, --hidden and --truecrypt apply to VeraCrypt/TrueCrypt volumes, not BitLocker")
		}
		args = []string{"open", "--type", "bitlk", dev, MapperName, "--key-file=-"}
	case "tcrypt":
		// For tcrypt --key-file names VeraCrypt keyfiles; the password comes on stdin (TcryptStdin).
		args = []string{"open", "--type", "tcrypt", dev, MapperName}
		if !c.TrueCrypt {
			args = append(args, "--veracrypt")
		}
		if c.PIM < 0 || c.PIM > MaxPIM || ((c.PIM > 0 || c.SecretPIM) && c.TrueCrypt) {
			return nil, control.Errorf(control.CodeInvalidArgument, "a PIM is a number from 1 to %d and only VeraCrypt has one", MaxPIM)
		}
		if c.PIM > 0 || c.SecretPIM {
			// The PIM is the second line of stdin, never argv (TcryptStdin).
			args = append(args, "--veracrypt-query-pim")
		}
		if c.Hidden {
			args = append(args, "--tcrypt-hidden")
		}
		if c.KeyFileSize > 0 {
			// The keyfile is the rest of stdin, after the password (and PIM) lines: cryptsetup
			// reads those first, then its keyfiles in crypt_load. No /dev/stdin without udev.
			args = append(args, "--key-file=/proc/self/fd/0")
		}
	default:
		return nil, control.Errorf(control.CodeInvalidArgument, "unknown container type %q: use bitlk or tcrypt", c.Type)
	}
	if o.ReadOnly {
		args = append(args, "--readonly")
	}
	if o.AllowDiscards {
		args = append(args, "--allow-discards")
	}
	return args, nil
}

// MaxPIM is VeraCrypt's largest PIM for a non-system volume.
const MaxPIM = 2147468

// TcryptStdin builds what `cryptsetup open --type tcrypt` reads on stdin from the unlock secret:
// the password line, with a PIM (control.Crypt.SecretPIM: the secret starts with its digits and
// a newline; or c.PIM) the PIM line, then with a keyfile (KeyFileSize, after the password and a
// newline in the secret) the keyfile's bytes. It returns a new buffer the caller wipes; secret
// stays the caller's. The PIM is validated here so a typo is not spent as a wrong try.
//
// cryptsetup 2.6.1 (Debian 12) reads both lines this way: src/cryptsetup.c tcrypt_load calls
// tools_get_key for the password and, with --veracrypt-query-pim, again for "Enter VeraCrypt
// PIM", both with key_file = keyfile_stdin, NULL unless --key-file=- was given; on a
// non-terminal stdin src/utils_password.c tools_get_key then calls crypt_keyfile_device_read
// with CRYPT_KEYFILE_STOP_EOL, which (lib/utils.c) reads one byte at a time and stops at the
// newline, leaving the rest of stdin for the next line and the keyfiles. So neither line may
// hold a newline of its own, and --key-file=- must never be given (it would read to EOF).
// set_tries_tty (src/utils_luks.c) allows a single try on a non-terminal stdin: a wrong answer
// exits, and the host's three-tries loop stays in charge.
func TcryptStdin(c control.Crypt, secret []byte) ([]byte, error) {
	if c.Type != "tcrypt" {
		return append([]byte(nil), secret...), nil
	}
	var pim []byte
	if c.SecretPIM {
		nl := bytes.IndexByte(secret, '\n')
		if nl < 0 || !validPIM(secret[:nl]) {
			return nil, control.Errorf(control.CodeInvalidArgument, "the PIM must be a number from 1 to %d (VeraCrypt shows it when the volume is created)", MaxPIM)
		}
		pim, secret = secret[:nl], secret[nl+1:]
	} else if c.PIM > 0 {
		pim = strconv.AppendInt(nil, int64(c.PIM), 10) // from the message body (no host sends it)
		defer clear(pim)
	}
	pass, keyFile := secret, []byte(nil)
	if c.KeyFileSize > 0 {
		pw := len(secret) - c.KeyFileSize - 1
		if pw < 0 || secret[pw] != '\n' {
			return nil, control.Errorf(control.CodeInvalidArgument, "the unlock secret does not hold the %d-byte keyfile it announces", c.KeyFileSize)
		}
		pass, keyFile = secret[:pw], secret[pw+1:]
	}
	if bytes.IndexByte(pass, '\n') >= 0 {
		return nil, control.Errorf(control.CodeInvalidArgument, "a VeraCrypt password is one line: it cannot hold a line break")
	}
	if len(pass) == 0 && len(keyFile) == 0 {
		return nil, control.Errorf(control.CodeInvalidArgument, "empty password and no keyfile: nothing to unlock the VeraCrypt volume with")
	}
	out := make([]byte, 0, len(pass)+len(pim)+len(keyFile)+2) // exact: append never copies
	out = append(append(out, pass...), '\n')
	if len(pim) > 0 {
		out = append(append(out, pim...), '\n')
	}
	return append(out, keyFile...), nil
}

// validPIM: 1 to MaxPIM, decimal digits only.
func validPIM(b []byte) bool {
	if len(b) == 0 || len(b) > 7 {
		return false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return false
		}
		n = n*10 + int(d-'0')
	}
	return n >= 1 && n <= MaxPIM
}

// OpenOther unlocks a BitLocker or VeraCrypt/TrueCrypt device as MapperPath. Its errors never
// send the user to luksHeaderRestore: these are not LUKS headers.
func (t *Tool) OpenOther(ctx context.Context, dev string, c control.Crypt, o OpenOptions, secret []byte) error {
	if c.Type == "bitlk" && len(secret) == 0 {
		return control.Errorf(control.CodeInvalidArgument, "empty passphrase: nothing to unlock %s with", dev)
	}
	args, err := OtherOpenArgs(dev, c, o)
	if err != nil {
		return err
	}
	stdin, err := TcryptStdin(c, secret)
	if err != nil {
		return err
	}
	defer clear(stdin)
	r, err := t.run(ctx, args, stdin)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return classifyOther(dev, c, r, t.memory(ctx, r, ""))
}

// classifyOther maps cryptsetup's bitlk/tcrypt failures. tcrypt cannot tell a wrong password
// from a device that is no VeraCrypt volume at all (nothing on disk is unencrypted), so both
// get the same answer, saying so; PIM and hidden are part of what to check.
func classifyOther(dev string, c control.Crypt, r command.Result, mem Memory) error {
	if r.ExitCode == 0 && r.Signal == "" {
		return nil
	}
	low := strings.ToLower(r.Stderr)
	name := "BitLocker"
	if c.Type == "tcrypt" {
		name = "VeraCrypt"
		if c.TrueCrypt {
			name = "TrueCrypt"
		}
	}
	e := func(code control.Code, format string, args ...any) error {
		ce := control.Errorf(code, format, args...)
		ce.Detail = strings.TrimSpace(r.Stderr)
		return ce
	}
	switch {
	case c.Type == "tcrypt" && (r.ExitCode == exitNoPerm || strings.Contains(low, "no device header detected") || strings.Contains(low, "no key available")):
		return e(control.CodeWrongPassphrase, "cannot unlock %s: the password%s did not open it as a %s volume; check the password%s (or that it is a %s volume at all)",
			dev, pimNote(c), name, pimHint(c), name)
	case strings.Contains(low, "no key available with this passphrase") || r.ExitCode == exitNoPerm:
		return e(control.CodeWrongPassphrase, "cannot unlock %s: neither its BitLocker password nor its recovery key matches; check it and try again", dev)
	case isOOM(r):
		return e(control.CodeOutOfMemory, "cannot unlock %s: %s", dev, memoryAdvice(mem))
	case strings.Contains(low, "not a valid") || strings.Contains(low, "failed to read") || strings.Contains(low, "signature"):
		return e(control.CodeCorruptHeader, "cannot unlock %s: its %s metadata cannot be read (%s); open it in Windows to check it (nothing was changed)", dev, name, lastLine(r.Stderr))
	case strings.Contains(low, "not supported") || strings.Contains(low, "unsupported") || unsupportedAlgorithm(r.Stderr) != "":
		return e(control.CodeUnsupportedCrypto, "cannot unlock %s: it uses a %s feature luksmount's guest cannot open (%s); nothing was changed", dev, name, lastLine(r.Stderr))
	case strings.Contains(low, "header") || strings.Contains(low, "metadata"):
		return e(control.CodeCorruptHeader, "cannot unlock %s: its %s metadata cannot be read (%s); open it in Windows to check it (nothing was changed)", dev, name, lastLine(r.Stderr))
	case strings.Contains(low, "input/output error"):
		return e(control.CodeIOError, "cannot unlock %s: the disk returned I/O errors (%s)", dev, lastLine(r.Stderr))
	}
	return e(control.CodeInternal, "cannot unlock %s as %s: cryptsetup exited with %d: %s", dev, name, r.ExitCode, lastLine(r.Stderr))
}

func pimNote(c control.Crypt) string {
	if c.PIM > 0 || c.SecretPIM {
		return " and PIM"
	}
	return ""
}

func pimHint(c control.Crypt) string {
	switch {
	case c.Hidden:
		return ", the PIM (--pim) and that a hidden volume exists"
	case !c.TrueCrypt:
		return ", the PIM if you set one (--pim), --hidden for a hidden volume"
	}
	return ""
}
