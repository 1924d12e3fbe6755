package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
)

func (e *env) statusCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "list running sessions: target, label, filesystem, mount point, NFS address, state, VM",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print a JSON array (keys documented in the README)"}},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("status takes no arguments")
			}
			sts, err := supervisor.Registry().List()
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeStatusJSON(e.stdout, sts)
			}
			writeStatusTable(e.stdout, sts, time.Now())
			return nil
		},
	}
}

func writeStatusJSON(w io.Writer, sts []session.State) error {
	if sts == nil {
		sts = []session.State{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sts)
}

func writeStatusTable(w io.Writer, sts []session.State, now time.Time) {
	if len(sts) == 0 {
		fmt.Fprintln(w, "no luksmount sessions are running")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tLABEL\tFS\tSTATE\tMOUNTPOINT\tNFS\tVM PID\tMEMORY\tSTARTED")
	for _, s := range sts {
		mp := s.Mountpoint
		if mp == "" {
			mp = "-"
		}
		nfs := "-"
		if s.NFSAddress != "" {
			nfs = s.NFSAddress + ":" + s.Export
		}
		label := s.Label
		if label == "" {
			label = "-"
		}
		fs := s.FSType
		if s.Encrypted {
			fs = "luks+" + fs
		}
		pid := "-"
		if s.VMPid > 0 {
			pid = strconv.Itoa(s.VMPid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d MiB\t%s\n", s.Target, label, fs, s.State, mp, nfs, pid,
			s.MemoryMiB, ago(s.Started, now))
	}
	tw.Flush()
}

func ago(t, now time.Time) string {
	d := now.Sub(t).Round(time.Second)
	switch {
	case t.IsZero():
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	default:
		return t.Local().Format("Jan 2 15:04")
	}
}
