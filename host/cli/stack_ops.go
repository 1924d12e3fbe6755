package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
)

func (e *env) trimCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "trim",
		Usage:     "discard the free space of a drive mounted with --discard (shrinks a sparse image)",
		ArgsUsage: "TARGET|MOUNTPOINT",
		Action:    func(c *ucli.Context) error { return e.stackOp(c, "trim", 0) },
	}
}

func (e *env) resizeCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "resize",
		Usage:     "grow a mounted image file, its LUKS mapping and its filesystem to --size",
		ArgsUsage: "--size SIZE TARGET|MOUNTPOINT",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "size", Usage: "the image's new `SIZE` (e.g. 8G); it only grows"},
		},
		Action: func(c *ucli.Context) error {
			if c.String("size") == "" {
				return usagef("resize needs --size: luksmount resize --size 8G TARGET")
			}
			n, err := parseSize(c.String("size"))
			if err != nil {
				return err
			}
			return e.stackOp(c, "resize", n)
		},
	}
}

// stackOp sends a trim or resize to TARGET's session.
func (e *env) stackOp(c *ucli.Context, op string, size int64) error {
	if c.NArg() != 1 {
		return usagef("%s takes one TARGET or MOUNTPOINT (see `luksmount status`)", op)
	}
	target := absTarget(c.Args().First())
	reg := supervisor.Registry()
	st, err := reg.Find(target)
	if errors.Is(err, session.ErrNoSession) {
		how := "luksmount " + target
		if op == "trim" {
			how = "luksmount --discard " + target
		}
		return fmt.Errorf("%w: %s works on a mounted drive; mount it first with `%s`", err, op, how)
	}
	if err != nil {
		return err
	}
	dir := reg.Dir(st.ID)
	if dir == "" {
		return fmt.Errorf("%w: %s ended meanwhile", session.ErrNoSession, target)
	}
	done, err := supervisor.RequestStackOp(session.SocketPath(filepath.Dir(dir), st.ID), op, size)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, done)
	return nil
}

// absTargets is absTarget for each device of a multi-device target ("a.img+b.img"); a path that
// exists as given is one device even if its name holds "+".
func absTargets(t string) string {
	if _, err := os.Stat(t); err == nil || !strings.Contains(t, supervisor.MemberSeparator) {
		return absTarget(t)
	}
	parts := supervisor.SplitTarget(t)
	for i, p := range parts {
		parts[i] = absTarget(p)
	}
	return strings.Join(parts, supervisor.MemberSeparator)
}

// cryptOptions reads the VeraCrypt/TrueCrypt flags (BitLocker is detected by its signature).
// --pim takes no value: the PIM is asked for after the password, like it, so it never shows in
// the process list (a number after --pim is refused rather than taken as the target).
func cryptOptions(c *ucli.Context, o *supervisor.Options) error {
	vc, tc, pim := c.Bool("veracrypt"), c.Bool("truecrypt"), c.Bool("pim")
	switch {
	case vc && tc:
		return usagef("--veracrypt and --truecrypt contradict each other: give one")
	case pim && c.NArg() > 0 && allDigits(c.Args().First()):
		return usagef("--pim takes no number: luksmount asks for the PIM after the password (on the command line every user of this computer could read it)")
	case !vc && !tc && (pim || c.Bool("hidden")):
		return usagef("--pim and --hidden need --veracrypt (or --truecrypt for --hidden)")
	case tc && pim:
		return usagef("TrueCrypt volumes have no PIM: drop --pim")
	case vc || tc:
		o.Crypt.Type, o.Crypt.TrueCrypt, o.Crypt.SecretPIM, o.Crypt.Hidden = "tcrypt", tc, pim, c.Bool("hidden")
	}
	return nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
