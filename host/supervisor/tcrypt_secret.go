package supervisor

import (
	"context"
	"fmt"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/pkg/control"
)

// tcryptSecret builds a VeraCrypt/TrueCrypt unlock secret in control.Crypt's layout: the PIM
// first (asked for right after the password, read like it: never argv, never a message body),
// then the password, then the keyfile's bytes (a VeraCrypt keyfile is mixed with the password,
// which may be empty). It wipes pass and the PIM; the caller wipes what it returns.
func (s *sup) tcryptSecret(ctx context.Context, pass, keyFile []byte, attempt int) ([]byte, control.Crypt, error) {
	c := s.opts.Crypt
	if c.Type != "tcrypt" || (!c.SecretPIM && keyFile == nil) {
		return pass, c, nil
	}
	defer passphrase.Wipe(pass)
	var pim []byte
	if c.SecretPIM {
		prompt := fmt.Sprintf("VeraCrypt PIM for %s: ", s.dev.Path)
		if attempt > 1 {
			prompt = fmt.Sprintf("VeraCrypt PIM for %s (attempt %d of %d): ", s.dev.Path, attempt, MaxAttempts)
		}
		p, err := s.ui.Passphrase(ctx, prompt, attempt, MaxAttempts)
		if err != nil {
			return nil, c, s.passphraseInputError(err, attempt-1)
		}
		pim = p
		defer passphrase.Wipe(pim)
		if !validPIM(pim) {
			return nil, c, control.Errorf(control.CodeInvalidArgument, "the PIM for %s must be a number (VeraCrypt showed it when the volume was made); nothing was changed", s.dev.Path)
		}
	}
	out := make([]byte, 0, len(pim)+len(pass)+len(keyFile)+2)
	if c.SecretPIM {
		out = append(append(out, pim...), '\n')
	}
	out = append(out, pass...)
	if keyFile != nil {
		out = append(append(out, '\n'), keyFile...)
		c.KeyFileSize = len(keyFile)
	}
	return out, c, nil
}

func validPIM(p []byte) bool {
	if len(p) == 0 || len(p) > 7 {
		return false
	}
	for _, d := range p {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// secretName is what a wrong-secret error calls what the user typed: for VeraCrypt a wrong PIM
// or keyfile looks the same as a wrong password.
func (s *sup) secretName() string {
	c := s.opts.Crypt
	switch {
	case c.Type != "tcrypt":
		return ""
	case c.SecretPIM && s.opts.KeyFile != "":
		return "password, PIM or keyfile"
	case c.SecretPIM:
		return "password or PIM"
	case s.opts.KeyFile != "":
		return "password or keyfile"
	}
	return "password"
}
