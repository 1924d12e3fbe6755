package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
)

func (e *env) checkCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "check",
		Usage:     "check the drive's filesystem in the VM (e2fsck -n, xfs_repair -n, btrfs check); --repair fixes it after asking",
		ArgsUsage: "TARGET",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "repair", Usage: "if problems are found, ask, then repair them (writes to the drive)"},
			&ucli.StringFlag{Name: "key-file", Usage: "unlock with this file's contents instead of a passphrase"},
			noCategory(headerFlag()),
			memoryFlag("VM memory in `MiB` (default: sized from the LUKS key slots)", ""),
			&ucli.StringFlag{Name: "accel", Value: "auto", Usage: "VM accelerator: auto, hvf, kvm or tcg"},
		},
		Action: e.check,
	}
}

func (e *env) check(c *ucli.Context) error {
	if c.NArg() != 1 {
		return usagef("check takes one TARGET: luksmount check [--repair] TARGET")
	}
	o := supervisor.CheckOptions{Target: absTarget(c.Args().First()), Repair: c.Bool("repair"),
		KeyFile: c.String("key-file")}
	var err error
	if o.Header, err = headerPath(c); err != nil {
		return err
	}
	if o.MemoryMiB, err = vmMemory(c); err != nil {
		return err
	}
	if a := strings.ToLower(c.String("accel")); a != "auto" {
		if a != "hvf" && a != "kvm" && a != "tcg" {
			return usagef("--accel %q is unknown: use auto, hvf, kvm or tcg", c.String("accel"))
		}
		o.Accel = a
	}
	u := session.Invoker()
	o.UID, o.GID, o.Sudo = u.UID, u.GID, u.Sudo
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	deps := supervisor.Default(supervisor.Options{Target: o.Target})
	ui := &checkUI{termUI{e: e, pr: passphrase.New(e.stdin, e.stderr)}}
	res, err := supervisor.Check(ctx, o, deps, ui)
	if res != nil && res.Output != "" {
		fmt.Fprintln(e.stdout, res.Output)
	}
	if err != nil {
		return err
	}
	switch {
	case res.Repaired:
		fmt.Fprintf(e.stdout, "repaired the %s filesystem on %s; mount it with `luksmount %s`\n", res.FSType, o.Target, o.Target)
	default:
		fmt.Fprintf(e.stdout, "the %s filesystem on %s is clean\n", res.FSType, o.Target)
	}
	return nil
}

// checkUI prompts on the terminal, or reads stdin line by line: the passphrase first (termUI's),
// then the answer to the repair question.
type checkUI struct{ termUI }

func (u *checkUI) Confirm(question string) (bool, error) {
	fmt.Fprint(u.e.stderr, question)
	line, err := passphrase.ReadLine(u.e.stdin)
	if err != nil {
		fmt.Fprintln(u.e.stderr)
		return false, nil // no answer is no
	}
	defer passphrase.Wipe(line)
	a := strings.ToLower(strings.TrimSpace(string(line)))
	return a == "y" || a == "yes", nil
}
