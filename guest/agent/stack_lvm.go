package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// LVM2 through the lvm binary, without udev or lvmetad: activation only (never a metadata write).

// lvmConfig makes lvm work in the udev-less guest and keeps it from writing backups to /etc.
const lvmConfig = `devices{obtain_device_list_from_udev=0 use_devicesfile=0} ` +
	`activation{udev_sync=0 udev_rules=0 monitoring=0} global{use_lvmpolld=0} backup{backup=0 archive=0}`

var lvmEnv = []string{"DM_DISABLE_UDEV=1", "LVM_SUPPRESS_FD_WARNINGS=1"}

func (a *Agent) lvm(ctx context.Context, args ...string) (command.Result, error) {
	full := append([]string{args[0], "--config", lvmConfig}, args[1:]...)
	r, err := a.deps.Run.Run(ctx, command.Cmd{Name: "lvm", Args: full, Env: lvmEnv})
	if err != nil {
		return r, control.Errorf(control.CodeUnsupportedFS, "this guest image has no LVM tools (%v)", err)
	}
	return r, nil
}

// vgInfo is one volume group as `lvm vgs` reports it.
type vgInfo struct {
	Name    string
	PVs     int
	Missing int
	Size    int64
}

// lvInfo is one logical volume.
type lvInfo struct {
	VG, Name string
	Size     int64
	DMPath   string // /dev/mapper/vg-lv
}

type lvmReport struct {
	Report []map[string][]map[string]string `json:"report"`
}

// parseLVMReport reads `--reportformat json` output: the rows of section (vg, lv, pv).
func parseLVMReport(out, section string) ([]map[string]string, error) {
	var r lvmReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("cannot read lvm's report: %w", err)
	}
	var rows []map[string]string
	for _, rep := range r.Report {
		rows = append(rows, rep[section]...)
	}
	return rows, nil
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

func parseVGs(out string) ([]vgInfo, error) {
	rows, err := parseLVMReport(out, "vg")
	if err != nil {
		return nil, err
	}
	var vgs []vgInfo
	for _, r := range rows {
		vgs = append(vgs, vgInfo{Name: r["vg_name"], PVs: int(atoi64(r["pv_count"])), Missing: int(atoi64(r["vg_missing_pv_count"])), Size: atoi64(r["vg_size"])})
	}
	return vgs, nil
}

func parseLVs(out string) ([]lvInfo, error) {
	rows, err := parseLVMReport(out, "lv")
	if err != nil {
		return nil, err
	}
	var lvs []lvInfo
	for _, r := range rows {
		// Thin pools, snapshots' origins' internals and other hidden LVs hold no filesystem.
		if attr := r["lv_attr"]; attr != "" && (attr[0] == 't' || attr[0] == 'i' || attr[0] == 'l' || attr[0] == 'e') {
			continue
		}
		lvs = append(lvs, lvInfo{VG: r["vg_name"], Name: r["lv_name"], Size: atoi64(r["lv_size"]), DMPath: r["lv_dm_path"]})
	}
	return lvs, nil
}

// activateLVM activates every complete volume group and returns their logical volumes. A group
// missing a physical volume is refused before anything is activated: partial activation could
// show a filesystem with holes.
func (a *Agent) activateLVM(ctx context.Context) ([]lvInfo, error) {
	start := a.tl.Now()
	r, err := a.lvm(ctx, "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,pv_count,vg_missing_pv_count,vg_size")
	if err != nil {
		return nil, err
	}
	vgs, err := parseVGs(r.Stdout)
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "%v", err)
	}
	if r.ExitCode != 0 && len(vgs) == 0 {
		return nil, control.Errorf(control.CodeInternal, "lvm vgs exited with %d: %s", r.ExitCode, lastLine(r.Stderr))
	}
	var names []string
	for _, vg := range vgs {
		if vg.Missing > 0 {
			return nil, a.missingPVError(ctx, vg) // stack_lvm_missing.go
		}
		if a.stk.vgActive[vg.Name] {
			continue
		}
		names = append(names, vg.Name)
	}
	for _, name := range names {
		r, err := a.lvm(ctx, "vgchange", "-ay", name)
		if err != nil {
			return nil, err
		}
		if r.ExitCode != 0 {
			return nil, control.Errorf(control.CodeIOError, "cannot activate LVM volume group %s: %s", name, lastLine(r.Stderr))
		}
		vg := name
		a.stk.vgActive[vg] = true
		a.stk.push("deactivate LVM volume group "+vg, func(ctx context.Context) error {
			r, err := a.lvm(ctx, "vgchange", "-an", vg)
			if err == nil && r.ExitCode != 0 {
				err = fmt.Errorf("%s", lastLine(r.Stderr))
			}
			if err == nil {
				delete(a.stk.vgActive, vg)
			}
			return err
		})
	}
	r, err = a.lvm(ctx, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,lv_name,lv_size,lv_dm_path,lv_attr")
	if err != nil {
		return nil, err
	}
	lvs, err := parseLVs(r.Stdout)
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "%v", err)
	}
	if len(names) > 0 {
		a.tl.Step("lvm", start, "activated %s: %d logical volume(s)", strings.Join(names, ", "), len(lvs))
	}
	return lvs, nil
}
