package cryptsetup

import (
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

// The PIM and a VeraCrypt keyfile travel in the secret: cryptsetup gets the password (and the
// keyfile after it) on stdin, the PIM in its guest-only argv, and the command's log line hides it.
func TestOpenOtherTakesPIMAndKeyFileFromTheSecret(t *testing.T) {
	rec := &recorder{}
	tool := &Tool{Run: rec}
	c := control.Crypt{Type: "tcrypt", SecretPIM: true, KeyFileSize: 4}
	if err := tool.OpenOther(context.Background(), "/dev/vda", c, OpenOptions{}, []byte("4821\npass word\nKEYF")); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.cmds[0].Args, " ")
	if want := "open --type tcrypt /dev/vda luksmount --veracrypt --veracrypt-pim=4821 --key-file=/proc/self/fd/0"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if string(rec.stdins[0]) != "pass word\nKEYF" {
		t.Errorf("stdin %q", rec.stdins[0])
	}
	if s := rec.cmds[0].String(); strings.Contains(s, "4821") || strings.Contains(s, "pass") {
		t.Errorf("the log line shows a secret: %s", s)
	}
	for _, bad := range []string{"", "\npw", "12a\npw", "0\npw", "99999999\npw", "5pw"} {
		c := control.Crypt{Type: "tcrypt", SecretPIM: true}
		if _, err := TcryptSecret(&c, []byte(bad)); err == nil {
			t.Errorf("TcryptSecret(%q) accepted", bad)
		}
	}
	c = control.Crypt{Type: "tcrypt", KeyFileSize: 10}
	if _, err := TcryptSecret(&c, []byte("pw\nshort")); err == nil {
		t.Error("a secret shorter than its keyfile was accepted")
	}
	// Without a PIM or keyfile the secret is the password, as before.
	c = control.Crypt{Type: "tcrypt"}
	if in, err := TcryptSecret(&c, []byte("12\npw")); err != nil || string(in) != "12\npw" || c.PIM != 0 {
		t.Errorf("plain secret: %q %v pim %d", in, err, c.PIM)
	}
}
