package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

var errHasData = supervisor.ErrHasData

func (e *env) formatCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "format",
		Usage:     "create a new LUKS2 + ext4 (or --fs) drive or image (refuses a target that holds data)",
		ArgsUsage: "TARGET",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "size", Usage: "create an image file of this `SIZE` (e.g. 256M, 8G)"},
			&ucli.StringFlag{Name: "label", Usage: "filesystem (and LUKS2) label"},
			&ucli.StringFlag{Name: "type", Value: "luks2", Usage: "luks2, luks1 or none (no encryption)"},
			fsFlag,
			&ucli.IntFlag{Name: "pbkdf-memory", Usage: "argon2 memory cost in `KiB` (cryptsetup's meaning)"},
			&ucli.IntFlag{Name: "iter-time", Usage: "key derivation time in `ms` (cryptsetup's meaning)"},
			&ucli.IntFlag{Name: "pbkdf-force-iterations", Hidden: true},
			&ucli.StringFlag{Name: "cipher", Usage: "LUKS `CIPHER` in cryptsetup's spelling (default aes-xts-plain64; e.g. serpent-xts-plain64)"},
			&ucli.IntFlag{Name: "key-size", Usage: "LUKS volume key size in `BITS` (cryptsetup's default for the cipher)"},
			&ucli.StringFlag{Name: "hash", Usage: "LUKS `HASH` for the key derivation and digest (default sha256)"},
			&ucli.BoolFlag{Name: "force", Usage: "format even if the target holds data (destroys it)"},
			memoryFlag("VM memory in `MiB` (default: sized for the key derivation)", ""),
			&ucli.StringFlag{Name: "accel", Value: "auto", Usage: "VM accelerator: auto, hvf, kvm or tcg"},
		},
		Action: e.format,
	}
}

func formatOptions(c *ucli.Context) (o supervisor.FormatOptions, err error) {
	if c.NArg() != 1 {
		return o, usagef("format takes one TARGET: luksmount format [options] TARGET")
	}
	o.Target = absTarget(c.Args().First())
	if s := c.String("size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return o, err
		}
		o.Size = n
	}
	o.Label = c.String("label")
	if o.FS, err = formatFS(c.String("fs"), o.Label); err != nil {
		return o, err
	}
	o.Type = strings.ToLower(c.String("type"))
	switch o.Type {
	case "luks2", "luks1", "none":
	default:
		return o, usagef("--type %q is unknown: use luks2, luks1 or none", c.String("type"))
	}
	o.PBKDFMemoryKiB = c.Int("pbkdf-memory")
	o.IterTimeMS = c.Int("iter-time")
	o.PBKDFForceIterations = c.Int("pbkdf-force-iterations")
	if o.PBKDFMemoryKiB < 0 || o.IterTimeMS < 0 || o.PBKDFForceIterations < 0 {
		return o, usagef("--pbkdf-memory, --iter-time and --pbkdf-force-iterations must be positive")
	}
	if o.PBKDFMemoryKiB > 0 && o.Type == "luks1" {
		return o, usagef("--pbkdf-memory needs --type luks2 (luks1 uses pbkdf2)")
	}
	o.Cipher, o.KeySizeBits, o.Hash = c.String("cipher"), c.Int("key-size"), strings.ToLower(c.String("hash"))
	if o.Type == "none" && (o.Cipher != "" || o.KeySizeBits != 0 || o.Hash != "") {
		return o, usagef("--cipher, --key-size and --hash need --type luks2 or luks1")
	}
	if o.Cipher != "" {
		if err := luksheader.CheckCipher(o.Cipher); err != nil {
			return o, usagef("--cipher %q: luksmount's guest supports aes, serpent, twofish, camellia, cast5, cast6 and blowfish in xts, cbc, ecb or lrw mode (for example serpent-xts-plain64)", o.Cipher)
		}
	}
	if o.KeySizeBits < 0 || o.KeySizeBits%8 != 0 {
		return o, usagef("--key-size %d must be a positive multiple of 8 bits (e.g. 512 for xts)", o.KeySizeBits)
	}
	if o.Hash != "" {
		if err := luksheader.CheckHash(o.Hash); err != nil {
			return o, usagef("--hash %q is unknown: use sha256, sha512, sha1, ripemd160 or whirlpool", o.Hash)
		}
	}
	o.Force = c.Bool("force")
	if o.MemoryMiB, err = vmMemory(c); err != nil {
		return o, err
	}
	if a := strings.ToLower(c.String("accel")); a != "auto" {
		if a != "hvf" && a != "kvm" && a != "tcg" {
			return o, usagef("--accel %q is unknown: use auto, hvf, kvm or tcg", c.String("accel"))
		}
		o.Accel = a
	}
	u := session.Invoker()
	o.UID, o.GID, o.Sudo = u.UID, u.GID, u.Sudo
	return o, nil
}

// parseSize reads 256M, 8G, 1T or a byte count (binary units).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i"))
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, usagef("--size %q is not a size like 256M or 8G", s)
	}
	if v*mult < 32<<20 {
		return 0, usagef("--size %s is too small: LUKS2 and ext4 need at least 32M", s)
	}
	return v * mult, nil
}

func (e *env) format(c *ucli.Context) error {
	o, err := formatOptions(c)
	if err != nil {
		return err
	}
	var secret []byte
	if o.Type != "none" {
		pr := passphrase.New(e.stdin, e.stderr)
		secret, err = pr.ReadNew(fmt.Sprintf("New passphrase for %s: ", o.Target), "Verify passphrase: ")
		if err != nil {
			return err
		}
		defer passphrase.Wipe(secret)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	deps := supervisor.Default(supervisor.Options{})
	deps.Host = nil
	rep, err := supervisor.Format(ctx, o, deps, secret, func(line string) { fmt.Fprintln(e.stderr, "luksmount: "+line) })
	if err != nil {
		return err
	}
	what := fsOrDefault(o.FS)
	if o.Type != "none" {
		what = fmt.Sprintf("%s (UUID %s) with %s", strings.ToUpper(o.Type), rep.LUKSUUID, what)
	}
	fmt.Fprintf(e.stdout, "formatted %s: %s (UUID %s)", o.Target, what, rep.FSUUID)
	if rep.Label != "" {
		fmt.Fprintf(e.stdout, ", label %q", rep.Label)
	}
	fmt.Fprintf(e.stdout, "; mount it with `luksmount %s`\n", o.Target)
	return nil
}
