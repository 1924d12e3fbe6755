package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/supervisor"
)

// Bad --cipher/--hash/--key-size fail before anything is created or booted.
func TestFormatCipherFlags(t *testing.T) {
	isolate(t)
	img := filepath.Join(t.TempDir(), "new.img")
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--cipher", "anubis-xts-plain64"}, "serpent-xts-plain64"},
		{[]string{"--cipher", "aes-ctr-plain64"}, "--cipher"},
		{[]string{"--hash", "md4"}, "--hash"},
		{[]string{"--key-size", "100"}, "--key-size"},
		{[]string{"--type", "none", "--cipher", "serpent-xts-plain64"}, "need --type luks2 or luks1"},
	} {
		args := append(append([]string{"format", "--size", "64M"}, tc.args...), img)
		code, _, stderr := run(t, "pw\n", args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.says) {
			t.Errorf("%v: exit %d, %q; want usage error mentioning %q", tc.args, code, stderr, tc.says)
		}
		if _, err := os.Stat(img); !os.IsNotExist(err) {
			t.Fatalf("%v: image created although the options were refused", tc.args)
		}
	}
	o, err := formatOptionsFor(t, "--type", "luks1", "--cipher", "serpent-cbc-essiv:sha256", "--key-size", "256", "--hash", "Whirlpool", img)
	if err != nil || o.Cipher != "serpent-cbc-essiv:sha256" || o.KeySizeBits != 256 || o.Hash != "whirlpool" {
		t.Fatalf("formatOptions = %+v, %v", o, err)
	}
}

// formatOptionsFor parses a format command line the way the CLI does, without running it.
func formatOptionsFor(t *testing.T, args ...string) (o supervisor.FormatOptions, err error) {
	cmd := (&env{}).formatCommand()
	cmd.Action = func(c *ucli.Context) error { o, err = formatOptions(c); return nil }
	app := &ucli.App{Name: "luksmount", Commands: []*ucli.Command{cmd}}
	if rerr := app.Run(append([]string{"luksmount", "format"}, args...)); rerr != nil {
		t.Fatal(rerr)
	}
	return o, err
}
