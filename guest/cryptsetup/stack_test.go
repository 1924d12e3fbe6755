package cryptsetup

import (
	"errors"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

func TestOtherOpenArgs(t *testing.T) {
	for _, tc := range []struct {
		c    control.Crypt
		o    OpenOptions
		want string
	}{
		{control.Crypt{Type: "bitlk"}, OpenOptions{}, "open --type bitlk /dev/vda luksmount --key-file=-"},
		{control.Crypt{Type: "bitlk"}, OpenOptions{ReadOnly: true}, "open --type bitlk /dev/vda luksmount --key-file=- --readonly"},
		{control.Crypt{Type: "tcrypt"}, OpenOptions{}, "open --type tcrypt /dev/vda luksmount --veracrypt"},
		{control.Crypt{Type: "tcrypt", PIM: 485, Hidden: true}, OpenOptions{}, "open --type tcrypt /dev/vda luksmount --veracrypt --veracrypt-pim=485 --tcrypt-hidden"},
		{control.Crypt{Type: "tcrypt", TrueCrypt: true}, OpenOptions{AllowDiscards: true}, "open --type tcrypt /dev/vda luksmount --allow-discards"},
	} {
		args, err := OtherOpenArgs("/dev/vda", tc.c, tc.o)
		if err != nil || strings.Join(args, " ") != tc.want {
			t.Errorf("OtherOpenArgs(%+v) = %q, %v; want %q", tc.c, args, err, tc.want)
		}
	}
	for _, bad := range []control.Crypt{{Type: "bitlk", PIM: 3}, {Type: "tcrypt", TrueCrypt: true, PIM: 3}, {Type: "luks"}, {Type: "tcrypt", PIM: -1}} {
		if _, err := OtherOpenArgs("/dev/vda", bad, OpenOptions{}); err == nil {
			t.Errorf("OtherOpenArgs(%+v) accepted", bad)
		}
	}
}

func TestClassifyOther(t *testing.T) {
	bitlk, vc := control.Crypt{Type: "bitlk"}, control.Crypt{Type: "tcrypt", PIM: 7}
	for _, tc := range []struct {
		c       control.Crypt
		r       command.Result
		code    control.Code
		contain string
	}{
		{bitlk, command.Result{ExitCode: 2, Stderr: "No key available with this passphrase.\n"}, control.CodeWrongPassphrase, "recovery key"},
		{bitlk, command.Result{ExitCode: 1, Stderr: "Invalid or unknown signature for BITLK device.\n"}, control.CodeCorruptHeader, "BitLocker metadata"},
		{bitlk, command.Result{ExitCode: 1, Stderr: "Activation of partially decrypted BITLK device is not supported.\n"}, control.CodeUnsupportedCrypto, "cannot open"},
		{vc, command.Result{ExitCode: 2, Stderr: "No device header detected with this passphrase.\n"}, control.CodeWrongPassphrase, "password and PIM"},
	} {
		err := classifyOther("/dev/vda", tc.c, tc.r, Memory{})
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(err.Error(), tc.contain) || strings.Contains(err.Error(), "luksHeaderRestore") {
			t.Errorf("%q -> %v; want %s mentioning %q", tc.r.Stderr, err, tc.code, tc.contain)
		}
	}
}
