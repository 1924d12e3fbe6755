package cli

import (
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/selftest"
)

func (e *env) selftestCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "selftest",
		Usage:     "mount a temporary encrypted image end to end and report what worked (accepting a release)",
		UsageText: "luksmount selftest [--accel auto|hvf|kvm|tcg] [--serve-only] [--json]",
		Description: "Makes a small LUKS2 + ext4 image with a random passphrase, mounts it as a user would (macOS:\n" +
			"/Volumes; Linux: mount -t nfs, or serve-only where the kernel has no NFS client), writes, reads back,\n" +
			"renames and deletes files with checksums, ejects, checks the session ended cleanly and prints the\n" +
			"timeline. Everything it made is removed, also on Ctrl-C. Exits 0 when every step passed.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "accel", Value: "auto", Usage: "VM accelerator: auto, hvf, kvm or tcg"},
			&ucli.BoolFlag{Name: "serve-only", Usage: "do not mount on the host; check through an NFS client instead"},
			&ucli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: func(c *ucli.Context) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if r, err := filepath.EvalSymlinks(exe); err == nil {
				exe = r
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			r := selftest.Run(ctx, selftest.Options{Exe: exe, Accel: c.String("accel"), ServeOnly: c.Bool("serve-only"), Log: e.stderr})
			if c.Bool("json") {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				enc.Encode(r)
			} else {
				r.WriteText(e.stdout)
			}
			if ctx.Err() != nil {
				return &silentError{code: ExitInterrupted}
			}
			if !r.OK() {
				return &silentError{code: ExitFailure}
			}
			return nil
		},
	}
}
