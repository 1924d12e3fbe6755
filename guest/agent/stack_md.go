package agent

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// mdadm RAID: members found by blkid are grouped by array UUID and assembled. An array missing
// members it can live without (degraded) is assembled read-only unless the user allows writes.

var mdEnv = []string{"MDADM_NO_UDEV=1"} // mdadm makes its own /dev/mdN nodes

// mdMember is what `mdadm --examine --export` says about one member.
type mdMember struct {
	Dev, UUID, Name, Level string
	Devices                int // members the array has when complete
}

func parseExamine(dev, out string) mdMember {
	m := mdMember{Dev: dev}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok {
			continue
		}
		switch k {
		case "MD_UUID":
			m.UUID = v
		case "MD_NAME":
			m.Name = v
		case "MD_LEVEL":
			m.Level = v
		case "MD_DEVICES":
			m.Devices, _ = strconv.Atoi(v)
		}
	}
	return m
}

// mdArray is one array's members present in the VM.
type mdArray struct {
	UUID, Name, Level string
	Devices           int
	Members           []string
}

// shortName is the array's name without mdadm's "host:" prefix.
func (m mdArray) shortName() string {
	if _, n, ok := strings.Cut(m.Name, ":"); ok {
		return n
	}
	return m.Name
}

// canRun says whether the level survives the missing members, and if so whether it is degraded.
func (m mdArray) canRun() (ok, degraded bool) {
	have, want := len(m.Members), m.Devices
	switch {
	case have >= want:
		return true, false
	case m.Level == "raid1":
		return have >= 1, true
	case m.Level == "raid4" || m.Level == "raid5":
		return have >= want-1, true
	case m.Level == "raid6":
		return have >= want-2, true
	case m.Level == "raid10":
		return have >= (want+1)/2, true // mdadm has the last word: it knows the layout
	}
	return false, false // raid0, linear: every member holds part of every file
}

func groupArrays(ms []mdMember) []mdArray {
	by := map[string]*mdArray{}
	var order []string
	for _, m := range ms {
		if m.UUID == "" {
			continue
		}
		a := by[m.UUID]
		if a == nil {
			a = &mdArray{UUID: m.UUID, Name: m.Name, Level: m.Level, Devices: m.Devices}
			by[m.UUID] = a
			order = append(order, m.UUID)
		}
		a.Members = append(a.Members, m.Dev)
	}
	var out []mdArray
	for _, u := range order {
		sort.Strings(by[u].Members)
		out = append(out, *by[u])
	}
	return out
}

// assembleMD assembles the arrays whose members are devs and returns the new md devices.
func (a *Agent) assembleMD(ctx context.Context, devs []string, allowDegraded bool) ([]string, error) {
	start := a.tl.Now()
	if a.deps.Features != nil {
		if _, err := a.deps.Features("md"); err != nil {
			return nil, control.Errorf(control.CodeUnsupportedFS, "this drive is part of an mdadm RAID array, but the guest cannot load md: %v", err)
		}
	}
	var ms []mdMember
	for _, d := range devs {
		r, err := a.deps.Run.Run(ctx, command.Cmd{Name: "mdadm", Args: []string{"--examine", "--export", d}, Env: mdEnv})
		if err != nil {
			return nil, control.Errorf(control.CodeUnsupportedFS, "this guest image has no mdadm (%v)", err)
		}
		if r.ExitCode == 0 {
			ms = append(ms, parseExamine(d, r.Stdout))
		}
	}
	var out []string
	for _, arr := range groupArrays(ms) {
		if a.stk.mdActive[arr.UUID] != "" {
			continue
		}
		ok, degraded := arr.canRun()
		if !ok {
			return nil, control.Errorf(control.CodeNotFound, "RAID array %s (%s) has %d of its %d members here, too few to read it: connect the missing drives and name them all, for example `luksmount disk4+disk5` (nothing was changed)", arr.shortName(), arr.Level, len(arr.Members), arr.Devices)
		}
		if a.deps.Features != nil {
			if _, err := a.deps.Features(arr.Level); err != nil {
				return nil, control.Errorf(control.CodeUnsupportedFS, "RAID array %s is %s, which this guest cannot assemble: %v", arr.shortName(), arr.Level, err)
			}
		}
		md := fmt.Sprintf("/dev/md%d", 100+len(a.stk.mdActive))
		args := []string{"--assemble", md, "--uuid=" + arr.UUID}
		ro := degraded && !allowDegraded
		if degraded {
			args = append(args, "--run")
		}
		if ro {
			args = append(args, "--readonly")
		}
		r, err := a.deps.Run.Run(ctx, command.Cmd{Name: "mdadm", Args: append(args, arr.Members...), Env: mdEnv})
		if err != nil {
			return nil, control.Errorf(control.CodeInternal, "cannot run mdadm: %v", err)
		}
		if r.ExitCode != 0 {
			return nil, control.Errorf(control.CodeIOError, "cannot assemble RAID array %s: %s", arr.shortName(), lastLine(r.Stderr))
		}
		a.stk.mdActive[arr.UUID] = md
		if ro {
			a.stk.readOnly[md] = fmt.Sprintf("RAID array %s is degraded (%d of %d members): assembled read-only so nothing more is lost; copy the data off, or mount with --allow-degraded to write", arr.shortName(), len(arr.Members), arr.Devices)
			a.tl.Logf("warn", "%s", a.stk.readOnly[md])
		} else if degraded {
			a.stk.notice[md] = fmt.Sprintf("RAID array %s is degraded (%d of %d members): assembled read-write as asked (--allow-degraded); it stays degraded until a disk is added (mdadm --add on Linux)", arr.shortName(), len(arr.Members), arr.Devices)
			a.tl.Logf("warn", "%s", a.stk.notice[md])
		}
		dev, uuid := md, arr.UUID
		a.stk.mdName[md] = "md/" + arr.shortName()
		a.stk.push("stop RAID array "+arr.shortName(), func(ctx context.Context) error {
			r, err := a.deps.Run.Run(ctx, command.Cmd{Name: "mdadm", Args: []string{"--stop", dev}, Env: mdEnv})
			if err == nil && r.ExitCode != 0 {
				err = fmt.Errorf("%s", lastLine(r.Stderr))
			}
			if err == nil {
				delete(a.stk.mdActive, uuid)
			}
			return err
		})
		a.tl.Step("raid", start, "%s %s assembled as %s from %s%s", arr.Level, arr.shortName(), md, strings.Join(arr.Members, ", "), roNote(ro))
		out = append(out, md)
	}
	return out, nil
}
