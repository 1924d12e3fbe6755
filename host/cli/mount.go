package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/passphrase"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
)

func mountFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringSliceFlag{Name: "options", Aliases: []string{"o"}, Usage: "guest mount options, comma-separated: ro, noatime, subvol=...", Category: "mount"},
		&ucli.StringFlag{Name: "key-file", Usage: "unlock with the contents of `FILE` instead of a passphrase", Category: "mount"},
		headerFlag(),
		&ucli.BoolFlag{Name: "discard", Usage: "pass TRIM through to the drive so `luksmount trim` can shrink an image (reveals which blocks are free: see README)", Category: "mount"},
		&ucli.StringFlag{Name: "volume", Usage: "the filesystem to mount when the drive holds several: `NAME` as vg/lv, p2, md/name or a label (see `luksmount list`)", Category: "mount"},
		&ucli.BoolFlag{Name: "allow-degraded", Usage: "assemble a RAID array that is missing members read-write (default: read-only)", Category: "mount"},
		&ucli.BoolFlag{Name: "veracrypt", Usage: "the drive is a VeraCrypt volume (it has no signature to detect)", Category: "VeraCrypt"},
		&ucli.BoolFlag{Name: "truecrypt", Usage: "the drive is a TrueCrypt volume", Category: "VeraCrypt"},
		&ucli.BoolFlag{Name: "pim", Usage: "the VeraCrypt volume has a PIM: it is asked for after the password (never given on the command line)", Category: "VeraCrypt"},
		&ucli.BoolFlag{Name: "hidden", Usage: "open the VeraCrypt/TrueCrypt hidden volume", Category: "VeraCrypt"},
		&ucli.BoolFlag{Name: "no-mount", Usage: "serve only: print the NFS address and the command that would mount it", Category: "mount"},
		&ucli.BoolFlag{Name: "foreground", Usage: "stay attached and stream the session log; Ctrl-C unmounts and stops", Category: "mount"},
		memoryFlag("VM memory in `MiB` (default: sized from the LUKS key slots)", "VM"),
		&ucli.IntFlag{Name: "cpus", Usage: "VM CPUs `N`", Category: "VM"},
		&ucli.StringSliceFlag{Name: "nfs-options", Usage: "extra NFS client mount options, comma-separated", Category: "mount"},
		&ucli.StringFlag{Name: "accel", Value: "auto", Usage: "VM accelerator: auto, hvf, kvm or tcg", Category: "VM"},
		&ucli.StringFlag{Name: "owner", Usage: "NFS ownership: `UID:GID` for new files, or none to pass ids through (default: files appear as yours, new files get the drive root's owner)", Category: "mount"},
	}
}

func (e *env) mountCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "mount",
		Usage:     "unlock and mount a drive or image (the default command)",
		ArgsUsage: "TARGET [MOUNTPOINT]",
		Flags:     mountFlags(),
		Action:    e.mount,
	}
}

// mountOptions validates the command line into supervisor options.
func mountOptions(c *ucli.Context) (supervisor.Options, error) {
	var o supervisor.Options
	var err error
	switch c.NArg() {
	case 0:
		return o, usagef("no target given: luksmount [options] TARGET [MOUNTPOINT] (`luksmount list` shows drives)")
	case 1, 2:
	default:
		return o, usagef("too many arguments: %s", strings.Join(c.Args().Slice()[2:], " "))
	}
	o.Target = absTargets(c.Args().Get(0))
	if mp := c.Args().Get(1); mp != "" {
		o.Mountpoint = absTarget(mp + "/")
		o.Mountpoint = strings.TrimSuffix(o.Mountpoint, "/")
	}
	o.MountOptions = supervisor.SplitOptions(c.StringSlice("options"))
	o.NFSOptions = supervisor.SplitOptions(c.StringSlice("nfs-options"))
	o.KeyFile = c.String("key-file")
	if o.KeyFile != "" {
		if abs, err := filepath.Abs(o.KeyFile); err == nil {
			o.KeyFile = abs
		}
	}
	if o.Header, err = headerPath(c); err != nil {
		return o, err
	}
	o.NoMount = c.Bool("no-mount")
	o.Discard = c.Bool("discard")
	o.Volume, o.AllowDegraded = c.String("volume"), c.Bool("allow-degraded")
	if err := cryptOptions(c, &o); err != nil {
		return o, err
	}
	o.Foreground = c.Bool("foreground")
	if o.NoMount && o.Mountpoint != "" {
		return o, usagef("--no-mount and a MOUNTPOINT contradict each other: give one")
	}
	if o.MemoryMiB, err = vmMemory(c); err != nil {
		return o, err
	}
	o.CPUs = c.Int("cpus")
	if o.CPUs < 0 || o.CPUs > 64 {
		return o, usagef("--cpus %d is out of range: give 1 to 64", o.CPUs)
	}
	switch a := strings.ToLower(c.String("accel")); a {
	case "", "auto":
		o.Accel = ""
	case "hvf", "kvm", "tcg":
		o.Accel = a
	default:
		return o, usagef("--accel %q is unknown: use auto, hvf, kvm or tcg", c.String("accel"))
	}
	if err := checkOwner(c.String("owner")); err != nil {
		return o, err
	}
	o.Owner = c.String("owner")
	u := session.Invoker()
	o.UID, o.GID, o.Sudo = u.UID, u.GID, u.Sudo
	return o, nil
}

func checkOwner(s string) error {
	if s == "" || s == "none" {
		return nil
	}
	uid, gid, ok := strings.Cut(s, ":")
	_, e1 := strconv.ParseUint(uid, 10, 32)
	_, e2 := strconv.ParseUint(gid, 10, 32)
	if !ok || e1 != nil || e2 != nil {
		return usagef("--owner %q is not UID:GID or none (for example --owner 501:20)", s)
	}
	return nil
}

func (e *env) mount(c *ucli.Context) error {
	o, err := mountOptions(c)
	if err != nil {
		return err
	}
	if o.Foreground {
		return e.mountForeground(c.Context, o)
	}
	return e.mountDetached(c.Context, o)
}

// termUI is the supervisor's UI in --foreground: prompts and progress on the terminal.
type termUI struct {
	e  *env
	pr *passphrase.Reader
}

func (u *termUI) Progress(line string) { fmt.Fprintln(u.e.stderr, "luksmount: "+line) }

func (u *termUI) Passphrase(ctx context.Context, prompt string, attempt, max int) ([]byte, error) {
	return u.pr.Read(prompt)
}

func (e *env) mountForeground(ctx context.Context, o supervisor.Options) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	deps := supervisor.Default(o)
	deps.LogTee = e.stdout
	ui := &termUI{e: e, pr: passphrase.New(e.stdin, e.stderr)}
	return supervisor.Run(ctx, o, deps, ui, func(r supervisor.Result) {
		e.printReady(r, true)
	})
}

// printReady tells the user where the drive is.
func (e *env) printReady(r supervisor.Result, foreground bool) {
	st := r.State
	what := st.FSType
	if st.Label != "" {
		what = fmt.Sprintf("%s %q", st.FSType, st.Label)
	}
	rw := "read-write"
	if st.ReadOnly {
		rw = "read-only"
	}
	stopHint := "Ctrl-C unmounts and stops"
	if !foreground {
		stopHint = "stop with `luksmount stop " + st.Target + "`"
	}
	if st.State == session.StateMounted {
		fmt.Fprintf(e.stdout, "%s (%s, %s) is mounted at %s; eject it or %s.\n", st.Target, what, rw, st.Mountpoint, stopHint)
		return
	}
	if r.Notice != "" {
		fmt.Fprintf(e.stderr, "luksmount: %s\n", r.Notice)
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s) is served over NFSv3 at %s, export %s; %s.\n", st.Target, what, rw, st.NFSAddress, st.Export, stopHint)
	if r.Hint != "" {
		fmt.Fprintln(e.stdout, r.Hint)
	}
}
