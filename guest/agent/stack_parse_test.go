package agent

import (
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/pkg/control"
)

func TestDiskNames(t *testing.T) {
	ds := []control.Disk{{Device: "/dev/vda"}, {Device: "/dev/vda1"}, {Device: "/dev/vda2"}, {Device: "/dev/vdb"}, {Device: "/dev/vdb1"}}
	got := diskNames(ds)
	want := map[string]string{"/dev/vda": "d1", "/dev/vda1": "p1", "/dev/vda2": "p2", "/dev/vdb": "d2", "/dev/vdb1": "d2p1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("name of %s = %q; want %q", k, got[k], v)
		}
	}
	if one := diskNames(ds[:3]); one["/dev/vda"] != "" || one["/dev/vda2"] != "p2" {
		t.Errorf("one disk: %v", one)
	}
}

func TestParseLVMReports(t *testing.T) {
	vgs, err := parseVGs(`{"report":[{"vg":[{"vg_name":"vg0","pv_count":"2","vg_missing_pv_count":"1","vg_size":"104857600"}]}]}`)
	if err != nil || len(vgs) != 1 || vgs[0] != (vgInfo{"vg0", 2, 1, 104857600}) {
		t.Fatalf("parseVGs = %+v, %v", vgs, err)
	}
	lvs, err := parseLVs(`{"report":[{"lv":[
		{"vg_name":"vg0","lv_name":"home","lv_size":"41943040","lv_dm_path":"/dev/mapper/vg0-home","lv_attr":"-wi-a-----"},
		{"vg_name":"vg0","lv_name":"pool","lv_size":"8388608","lv_dm_path":"/dev/mapper/vg0-pool","lv_attr":"twi-a-tz--"}]}]}`)
	if err != nil || len(lvs) != 1 || lvs[0].DMPath != "/dev/mapper/vg0-home" || lvs[0].Size != 41943040 {
		t.Fatalf("parseLVs = %+v, %v (a thin pool holds no filesystem)", lvs, err)
	}
	if _, err := parseVGs("  WARNING: not json"); err == nil {
		t.Fatal("parseVGs accepted garbage")
	}
}

func TestMDArrays(t *testing.T) {
	ex := "MD_LEVEL=raid5\nMD_DEVICES=3\nMD_NAME=host:data\nMD_UUID=aa:bb\nMD_DEV_UUID=x\n"
	ms := []mdMember{parseExamine("/dev/vdb", ex), parseExamine("/dev/vda", ex), parseExamine("/dev/vdc", "MD_UUID=cc\nMD_LEVEL=raid0\nMD_DEVICES=2\n")}
	arrs := groupArrays(ms)
	if len(arrs) != 2 || arrs[0].Level != "raid5" || arrs[0].Devices != 3 || strings.Join(arrs[0].Members, ",") != "/dev/vda,/dev/vdb" || arrs[0].shortName() != "data" {
		t.Fatalf("groupArrays = %+v", arrs)
	}
	for _, tc := range []struct {
		level        string
		have, want   int
		ok, degraded bool
	}{
		{"raid1", 1, 2, true, true}, {"raid1", 2, 2, true, false}, {"raid0", 1, 2, false, false},
		{"raid5", 2, 3, true, true}, {"raid5", 1, 3, false, true}, {"raid6", 2, 4, true, true},
		{"raid10", 2, 4, true, true}, {"linear", 1, 2, false, false},
	} {
		a := mdArray{Level: tc.level, Devices: tc.want, Members: make([]string, tc.have)}
		if ok, deg := a.canRun(); ok != tc.ok || (ok && deg != tc.degraded) {
			t.Errorf("%s with %d of %d: canRun = %v, %v; want %v, %v", tc.level, tc.have, tc.want, ok, deg, tc.ok, tc.degraded)
		}
	}
}

func TestPickVolume(t *testing.T) {
	devs := []blockDev{
		{dev: "/dev/vda"},
		{dev: "/dev/vda1", name: "p1", part: true, in: blkid.Info{Type: "vfat", Label: "EFI"}},
		{dev: "/dev/vda2", name: "p2", part: true, in: blkid.Info{Type: "crypto_LUKS"}},
		{dev: "/dev/mapper/luksmount", name: "p2", inside: "/dev/vda2", in: blkid.Info{Type: "LVM2_member"}},
		{dev: "/dev/mapper/vg0-root", name: "vg0/root", in: blkid.Info{Type: "ext4"}, size: 2 << 30},
		{dev: "/dev/mapper/vg0-home", name: "vg0/home", in: blkid.Info{Type: "ext4", Label: "Home"}},
	}
	_, err := pickVolume(devs, "")
	if err == nil || !strings.Contains(err.Error(), "3 filesystems") || !strings.Contains(err.Error(), `vg0/root (ext4, 2.0 GiB)`) || !strings.Contains(err.Error(), "--volume") {
		t.Fatalf("ambiguous pick: %v", err)
	}
	for want, dev := range map[string]string{"vg0/home": "/dev/mapper/vg0-home", "Home": "/dev/mapper/vg0-home", "vg0-root": "/dev/mapper/vg0-root", "p1": "/dev/vda1", "lvm:vg0/root": "/dev/mapper/vg0-root"} {
		if v, err := pickVolume(devs, want); err != nil || v.dev != dev {
			t.Errorf("pickVolume(%q) = %s, %v; want %s", want, v.dev, err, dev)
		}
	}
	if _, err := pickVolume(devs, "vg0/nope"); err == nil || !strings.Contains(err.Error(), `no volume "vg0/nope"`) || !strings.Contains(err.Error(), "vg0/home") {
		t.Fatalf("unknown volume: %v", err)
	}
	// Locked: the LUKS partition has no mapping yet.
	locked := []blockDev{devs[0], devs[2]}
	if _, err := pickVolume(locked, ""); err == nil || !strings.Contains(err.Error(), "unlock it") {
		t.Fatalf("locked pick: %v", err)
	}
}

func TestMissingPVs(t *testing.T) {
	rows, err := parseLVMReport(`{"report":[{"pv":[{"pv_name":"/dev/vda","pv_uuid":"aaaa-1","vg_name":"vg1","pv_missing":""},{"pv_name":"[unknown]","pv_uuid":"bbbb-2","vg_name":"vg1","pv_missing":"missing"},{"pv_name":"/dev/vdc","pv_uuid":"cccc-3","vg_name":"other","pv_missing":""}]}]}`, "pv")
	if err != nil {
		t.Fatal(err)
	}
	missing, found := missingPVs(rows, "vg1")
	if len(missing) != 1 || missing[0] != "bbbb-2" || len(found) != 1 || found[0] != "/dev/vda" {
		t.Fatalf("missing %v, found %v", missing, found)
	}
}
