package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/host/timelog"
)

func (e *env) logCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "log",
		Usage:     "print a session's log: a timeline of host and guest steps with durations",
		ArgsUsage: "[TARGET]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing while the session runs"},
			&ucli.BoolFlag{Name: "all", Usage: "print every recorded session, not just the last"},
		},
		Action: e.log,
	}
}

func (e *env) log(c *ucli.Context) error {
	if c.NArg() > 1 {
		return usagef("log takes at most one TARGET")
	}
	path, id, err := logPathFor(c.Args().First())
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("no log for %s: %w", c.Args().First(), err)
	}
	out := data
	if !c.Bool("all") {
		out = timelog.LastSession(data)
	}
	e.stdout.Write(out)
	if !c.Bool("follow") {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	reg := supervisor.Registry()
	return timelog.Follow(f, int64(len(data)), e.stdout, 250*time.Millisecond, func() bool {
		_, err := reg.Find(id)
		return err != nil
	})
}

// logPathFor finds the log of target (a live session's, else by the target's session id), or the
// most recent log when target is "".
func logPathFor(target string) (path, id string, err error) {
	if target == "" {
		ents, err := os.ReadDir(session.LogDir())
		if err != nil {
			return "", "", fmt.Errorf("no luksmount logs yet in %s: %w", session.LogDir(), err)
		}
		type lf struct {
			name string
			mod  time.Time
		}
		var logs []lf
		for _, e := range ents {
			if filepath.Ext(e.Name()) != ".log" {
				continue
			}
			if i, err := e.Info(); err == nil {
				logs = append(logs, lf{e.Name(), i.ModTime()})
			}
		}
		if len(logs) == 0 {
			return "", "", fmt.Errorf("no luksmount logs yet in %s: %w", session.LogDir(), fs.ErrNotExist)
		}
		sort.Slice(logs, func(i, j int) bool { return logs[i].mod.After(logs[j].mod) })
		name := logs[0].name
		return filepath.Join(session.LogDir(), name), name[:len(name)-len(".log")], nil
	}
	if st, err := supervisor.Registry().Find(target); err == nil {
		if st.Log != "" {
			return st.Log, st.ID, nil
		}
		return session.LogPath(st.ID), st.ID, nil
	}
	id = session.ID(blockdev.Resolve(absTarget(target), runtime.GOOS, func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}))
	p := session.LogPath(id)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("no log for %s in %s: %w", target, session.LogDir(), err)
	}
	return p, id, nil
}
