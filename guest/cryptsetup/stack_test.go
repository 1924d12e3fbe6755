package cryptsetup

import (
	"bytes"
	"context"
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
		{control.Crypt{Type: "tcrypt", PIM: 485, Hidden: true}, OpenOptions{}, "open --type tcrypt /dev/vda luksmount --veracrypt --veracrypt-query-pim --tcrypt-hidden"},
		{control.Crypt{Type: "tcrypt", SecretPIM: true, KeyFileSize: 9}, OpenOptions{}, "open --type tcrypt /dev/vda luksmount --veracrypt --veracrypt-query-pim --key-file=/proc/self/fd/0"},
		{control.Crypt{Type: "tcrypt", TrueCrypt: true}, OpenOptions{AllowDiscards: true}, "open --type tcrypt /dev/vda luksmount --allow-discards"},
	} {
		args, err := OtherOpenArgs("/dev/vda", tc.c, tc.o)
		if err != nil || strings.Join(args, " ") != tc.want {
			t.Errorf("OtherOpenArgs(%+v) = %q, %v; want %q", tc.c, args, err, tc.want)
		}
	}
	for _, bad := range []control.Crypt{{Type: "bitlk", PIM: 3}, {Type: "tcrypt", TrueCrypt: true, PIM: 3}, {Type: "luks"}, {Type: "tcrypt", PIM: -1}, {Type: "tcrypt", PIM: MaxPIM + 1}, {Type: "tcrypt", TrueCrypt: true, SecretPIM: true}, {Type: "bitlk", SecretPIM: true}} {
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

// The PIM and a VeraCrypt keyfile travel in the secret: cryptsetup gets the password line, the
// PIM line and the keyfile on stdin, and no argument holds the PIM or the password.
func TestOpenOtherTakesPIMAndKeyFileFromTheSecret(t *testing.T) {
	rec := &recorder{}
	tool := &Tool{Run: rec}
	c := control.Crypt{Type: "tcrypt", SecretPIM: true, KeyFileSize: 4}
	secret := []byte("4821\npass word\nKEYF")
	if err := tool.OpenOther(context.Background(), "/dev/vda", c, OpenOptions{}, secret); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.cmds[0].Args, " ")
	if want := "open --type tcrypt /dev/vda luksmount --veracrypt --veracrypt-query-pim --key-file=/proc/self/fd/0"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if string(rec.stdins[0]) != "pass word\n4821\nKEYF" {
		t.Errorf("stdin %q", rec.stdins[0])
	}
	for _, a := range rec.cmds[0].Args {
		if strings.Contains(a, "4821") || strings.Contains(a, "pass") {
			t.Errorf("an argument holds a secret: %q", a)
		}
	}
	if !bytes.Equal(rec.raw[0], make([]byte, len(rec.raw[0]))) {
		t.Errorf("cryptsetup's stdin buffer was not wiped: %q", rec.raw[0])
	}
	if string(secret) != "4821\npass word\nKEYF" {
		t.Errorf("the caller's secret was changed: %q", secret)
	}
	for _, bad := range []string{"", "\npw", "12a\npw", "0\npw", "99999999\npw", "5pw", "2147469\npw", "12\n", "12\npw\nsecond line"} {
		c := control.Crypt{Type: "tcrypt", SecretPIM: true}
		if in, err := TcryptStdin(c, []byte(bad)); err == nil {
			t.Errorf("TcryptStdin(%q) accepted: %q", bad, in)
		}
	}
	c = control.Crypt{Type: "tcrypt", KeyFileSize: 10}
	if _, err := TcryptStdin(c, []byte("pw\nshort")); err == nil {
		t.Error("a secret shorter than its keyfile was accepted")
	}
	for _, tc := range []struct {
		c            control.Crypt
		secret, want string
	}{
		{control.Crypt{Type: "tcrypt"}, "pw", "pw\n"},                                    // the password alone
		{control.Crypt{Type: "tcrypt", SecretPIM: true}, "2147468\npw", "pw\n2147468\n"}, // MaxPIM
		{control.Crypt{Type: "tcrypt", PIM: 7}, "pw", "pw\n7\n"},                         // a PIM in the message
		{control.Crypt{Type: "tcrypt", KeyFileSize: 3}, "\nk\nf", "\nk\nf"},              // keyfile only, newlines in it kept
		{control.Crypt{Type: "bitlk"}, "rec\nkey", "rec\nkey"},                           // bitlk: --key-file=- reads it all
	} {
		if in, err := TcryptStdin(tc.c, []byte(tc.secret)); err != nil || string(in) != tc.want {
			t.Errorf("TcryptStdin(%+v, %q) = %q, %v; want %q", tc.c, tc.secret, in, err, tc.want)
		}
	}
}
