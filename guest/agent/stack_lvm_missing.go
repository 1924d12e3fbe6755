package agent

import (
	"context"
	"strings"

	"github.com/luksmount/luksmount/pkg/control"
)

// missingPVError names what a volume group lacks: LVM knows each missing PV's UUID from the
// metadata on the PVs that are present (the guest's device names would mean nothing to the user).
func (a *Agent) missingPVError(ctx context.Context, vg vgInfo) error {
	var missing []string
	if r, err := a.lvm(ctx, "pvs", "--reportformat", "json", "-o", "pv_name,pv_uuid,vg_name,pv_missing"); err == nil {
		rows, _ := parseLVMReport(r.Stdout, "pv")
		missing, _ = missingPVs(rows, vg.Name)
	}
	what := "its other drive(s)"
	if len(missing) > 0 {
		what = "the drive(s) holding PV UUID " + strings.Join(missing, ", ")
	}
	return control.Errorf(control.CodeNotFound, "LVM volume group %s is missing %d of its %d physical volumes: connect %s and name every drive of the group joined with +, for example `luksmount disk4+disk5` (nothing was changed)",
		vg.Name, vg.Missing, vg.PVs, what)
}

// missingPVs splits vg's rows of `pvs` into the UUIDs of the missing PVs and the devices present.
func missingPVs(rows []map[string]string, vg string) (missing, found []string) {
	for _, r := range rows {
		if r["vg_name"] != vg {
			continue
		}
		if r["pv_missing"] != "" || strings.Contains(r["pv_name"], "unknown") {
			missing = append(missing, r["pv_uuid"])
		} else {
			found = append(found, r["pv_name"])
		}
	}
	return missing, found
}
