package cryptsetup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// recorder is a fake runner that keeps what it was asked to run.
type recorder struct {
	cmds   []command.Cmd
	stdins [][]byte
	raw    [][]byte // the Stdin buffers themselves, to see they are wiped
	result command.Result
}

func (r *recorder) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	r.cmds = append(r.cmds, c)
	r.stdins = append(r.stdins, append([]byte(nil), c.Stdin...))
	r.raw = append(r.raw, c.Stdin)
	return r.result, nil
}

func assertNoSecret(t *testing.T, c command.Cmd, secret string) {
	t.Helper()
	for _, s := range append(append([]string{c.Name}, c.Args...), c.Env...) {
		if strings.Contains(s, secret) {
			t.Fatalf("secret found in argv/env: %q in %v %v", s, c.Args, c.Env)
		}
	}
}

func TestOpenPassesSecretOnStdinOnly(t *testing.T) {
	const secret = "correct horse battery"
	rec := &recorder{}
	tool := &Tool{Run: rec}
	if err := tool.Open(context.Background(), "/dev/vda", true, []byte(secret), true); err != nil {
		t.Fatal(err)
	}
	c := rec.cmds[0]
	want := []string{"open", "--type", "luks", "/dev/vda", MapperName, "--key-file=-", "--disable-keyring", "--readonly"}
	if c.Name != "cryptsetup" || strings.Join(c.Args, " ") != strings.Join(want, " ") {
		t.Fatalf("argv = %s %q; want cryptsetup %q", c.Name, c.Args, want)
	}
	assertNoSecret(t, c, secret)
	if string(rec.stdins[0]) != secret {
		t.Fatalf("stdin = %q; want the secret with no newline", rec.stdins[0])
	}
	if strings.Join(c.Env, " ") != "DM_DISABLE_UDEV=1" {
		t.Fatalf("env = %q; want DM_DISABLE_UDEV=1", c.Env)
	}
	if err := tool.Open(context.Background(), "/dev/vda", false, nil, true); !errors.Is(err, &control.Error{Code: control.CodeInvalidArgument}) {
		t.Fatalf("Open with empty secret = %v; want invalid-argument", err)
	}
	if len(rec.cmds) != 1 {
		t.Fatal("cryptsetup ran with an empty secret")
	}
}

func TestFormatArgs(t *testing.T) {
	args, err := FormatArgs("/dev/vda", control.FormatRequest{Type: "luks2", PBKDF: "argon2id", PBKDFMemoryKiB: 32768,
		PBKDFForceIterations: 4, IterTimeMS: 100, Label: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	want := "luksFormat --type luks2 --batch-mode --key-file=- --pbkdf argon2id --pbkdf-memory 32768 --iter-time 100 --pbkdf-force-iterations 4 --label backup /dev/vda"
	if got := strings.Join(args, " "); got != want {
		t.Fatalf("FormatArgs =\n %s\nwant\n %s", got, want)
	}
	args, err = FormatArgs("/dev/vdb", control.FormatRequest{Type: "luks1", Label: "x"})
	if err != nil || strings.Join(args, " ") != "luksFormat --type luks1 --batch-mode --key-file=- /dev/vdb" {
		t.Fatalf("luks1 FormatArgs = %q, %v (LUKS1 has no label)", args, err)
	}
	args, err = FormatArgs("/dev/vdc", control.FormatRequest{Type: "luks1", Cipher: "serpent-cbc-essiv:sha256", KeySizeBits: 256, Hash: "whirlpool"})
	if want := "luksFormat --type luks1 --batch-mode --key-file=- --cipher serpent-cbc-essiv:sha256 --key-size 256 --hash whirlpool /dev/vdc"; err != nil || strings.Join(args, " ") != want {
		t.Fatalf("cipher FormatArgs = %q, %v; want %s", args, err, want)
	}
	for name, req := range map[string]control.FormatRequest{
		"bad type":       {Type: "luks3"},
		"luks1 argon":    {Type: "luks1", PBKDF: "argon2id"},
		"bad kdf":        {Type: "luks2", PBKDF: "scrypt"},
		"negative":       {Type: "luks2", IterTimeMS: -1},
		"pbkdf2 memory":  {Type: "luks2", PBKDF: "pbkdf2", PBKDFMemoryKiB: 1024},
		"label too long": {Type: "luks2", Label: strings.Repeat("x", 48)},
		"cipher":         {Type: "luks2", Cipher: "anubis-xts-plain64"},
		"cipher mode":    {Type: "luks2", Cipher: "aes-ctr-plain64"},
		"key size":       {Type: "luks2", KeySizeBits: 100},
		"hash":           {Type: "luks1", Hash: "md4"},
	} {
		if _, err := FormatArgs("/dev/vda", req); !errors.Is(err, &control.Error{Code: control.CodeInvalidArgument}) {
			t.Errorf("%s: FormatArgs error = %v; want invalid-argument", name, err)
		}
	}
}

func TestFormatKeepsSecretOffArgv(t *testing.T) {
	const secret = "--label evil"
	rec := &recorder{}
	err := (&Tool{Run: rec}).Format(context.Background(), "/dev/vda", control.FormatRequest{Type: "luks2"}, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, rec.cmds[0], secret)
	if string(rec.stdins[0]) != secret {
		t.Fatal("format secret not on stdin")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        command.Result
		hasMagic bool
		want     control.Code
		text     string
	}{
		{"wrong passphrase", command.Result{ExitCode: 2, Stderr: "No key available with this passphrase.\n"}, true, control.CodeWrongPassphrase, "passphrase"},
		{"not luks", command.Result{ExitCode: 1, Stderr: "Device /dev/vda is not a valid LUKS device.\n"}, false, control.CodeNotEncrypted, "not a LUKS device"},
		{"corrupt", command.Result{ExitCode: 1, Stderr: "Device /dev/vda is not a valid LUKS device.\n"}, true, control.CodeCorruptHeader, "luksHeaderRestore"},
		{"oom exit", command.Result{ExitCode: 3, Stderr: "Not enough available memory to open a keyslot.\n"}, true, control.CodeOutOfMemory, "needs 1024 MiB of memory but the VM has 492 MiB"},
		{"oom killed", command.Result{ExitCode: -1, Signal: "killed"}, true, control.CodeOutOfMemory, "1024 MiB"},
		{"busy", command.Result{ExitCode: 5, Stderr: "Device luksmount already exists.\n"}, true, control.CodeDeviceBusy, "busy"},
		{"io", command.Result{ExitCode: 1, Stderr: "Cannot read device /dev/vda: Input/output error\n"}, true, control.CodeIOError, "I/O"},
		{"missing", command.Result{ExitCode: 4, Stderr: "Device /dev/vdz does not exist or access denied.\n"}, true, control.CodeNotFound, "no such device"},
		{"other", command.Result{ExitCode: 1, Stderr: "something odd\n"}, true, control.CodeInternal, "something odd"},
		// What the guest lacks is never the drive's fault (messages as cryptsetup 2.6 prints them).
		{"no cipher", command.Result{ExitCode: 1, Stderr: "Failed to setup dm-crypt key mapping for device /dev/vda.\nCheck that kernel supports twofish-xts-plain64 cipher (check syslog for more info).\n"},
			true, control.CodeUnsupportedCrypto, "this drive uses the cipher twofish-xts-plain64, which luksmount's guest cannot open yet; nothing was changed"},
		{"no hash", command.Result{ExitCode: 1, Stderr: "Requested LUKS hash whirlpool is not supported.\nDevice /dev/vda is not a valid LUKS device.\n"},
			true, control.CodeUnsupportedCrypto, "the hash whirlpool, which luksmount's guest cannot open yet"},
		{"luks version", command.Result{ExitCode: 1, Stderr: "Unsupported LUKS version 3.\n"}, true, control.CodeUnsupportedCrypto, "Unsupported LUKS version 3"},
	} {
		err := Classify("unlock /dev/vda", tc.r, tc.hasMagic, Memory{NeedKiB: 1 << 20, HaveKiB: 492 * 1024})
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Code != tc.want || !strings.Contains(ce.Message, tc.text) {
			t.Errorf("%s: Classify = %v; want %s mentioning %q", tc.name, err, tc.want, tc.text)
		}
		if tc.want == control.CodeUnsupportedCrypto && (strings.Contains(ce.Message, "damaged") || strings.Contains(ce.Message, "Restore")) {
			t.Errorf("%s: %q blames the drive", tc.name, ce.Message)
		}
	}
	if err := Classify("x", command.Result{}, true, Memory{}); err != nil {
		t.Fatalf("exit 0 classified as %v", err)
	}
}

func TestParseDump(t *testing.T) {
	for _, tc := range []struct {
		file    string
		version int
		kdf     string
		mem     int64
		slots   int
	}{
		{"luks2-argon2id.txt", 2, "argon2id", 32768, 1},
		{"luks2-three-slots.txt", 2, "argon2i", 65536, 4},
		{"luks1.txt", 1, "pbkdf2", 0, 1},
	} {
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		info, err := ParseDump(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if info.Version != tc.version || info.KDF != tc.kdf || info.MaxMemoryKiB != tc.mem || info.Keyslots != tc.slots {
			t.Errorf("%s: ParseDump = %+v; want v%d %s %d KiB %d slots", tc.file, info, tc.version, tc.kdf, tc.mem, tc.slots)
		}
	}
	if _, err := ParseDump(strings.NewReader("garbage\n")); err == nil {
		t.Fatal("ParseDump accepted output without a version")
	}
}

func TestHasMagic(t *testing.T) {
	b := make([]byte, 64<<10)
	if HasMagic(bytes.NewReader(b)) {
		t.Fatal("zeroes have a LUKS magic")
	}
	copy(b[32<<10:], luks2Alt)
	if !HasMagic(bytes.NewReader(b)) {
		t.Fatal("secondary LUKS2 header at 32 KiB not seen")
	}
	c := make([]byte, 512)
	copy(c, luksMagic)
	if !HasMagic(bytes.NewReader(c)) {
		t.Fatal("primary magic not seen")
	}
}

func TestOpenOutOfMemoryAsksForSizes(t *testing.T) {
	rec := &recorder{result: command.Result{ExitCode: 3, Stderr: "Not enough available memory to open a keyslot.\n"}}
	var asked string
	tool := &Tool{Run: rec, Memory: func(ctx context.Context, dev string) Memory {
		asked = dev
		return Memory{NeedKiB: 4 << 20, HaveKiB: 1 << 20}
	}}
	err := tool.Open(context.Background(), "/dev/vda", false, []byte("pw"), true)
	if !errors.Is(err, control.ErrOutOfMemory) || !strings.Contains(err.Error(), "needs 4096 MiB of memory but the VM has 1024 MiB") || asked != "/dev/vda" {
		t.Fatalf("Open OOM = %v (asked about %q)", err, asked)
	}
}
