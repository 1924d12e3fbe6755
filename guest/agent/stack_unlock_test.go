package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// lvmOnTwoLUKS plays LUKS disks (two unless told) whose mappings are the PVs of vg0 (vg0/data):
// what `luksmount a+b` meets for LVM across two encrypted drives.
type lvmOnTwoLUKS struct {
	mu      sync.Mutex
	pass    map[string]string // disk -> its passphrase
	pvs     []string          // the disks whose mappings are vg0's PVs (nil: every disk)
	open    map[string]bool   // mapping name -> open
	openDev map[string]bool   // disk -> its mapping is open
	active  bool
	cmds    []string
}

func (f *lvmOnTwoLUKS) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, c.Name+" "+strings.Join(c.Args, " "))
	switch c.Name {
	case "blkid":
		switch dev := c.Args[len(c.Args)-1]; {
		case f.pass[dev] != "":
			return command.Result{Stdout: "TYPE=crypto_LUKS\nVERSION=2\n"}, nil
		case strings.HasPrefix(dev, "/dev/mapper/luksmount"):
			return command.Result{Stdout: "TYPE=LVM2_member\n"}, nil
		case dev == "/dev/mapper/vg0-data" && f.active:
			return command.Result{Stdout: "TYPE=ext4\nLABEL=data\n"}, nil
		}
		return command.Result{ExitCode: 2}, nil
	case "cryptsetup":
		switch c.Args[0] {
		case "open":
			if f.pass[c.Args[3]] != string(c.Stdin) {
				return command.Result{ExitCode: 2, Stderr: "No key available with this passphrase.\n"}, nil
			}
			f.open[c.Args[4]] = true
			if f.openDev != nil {
				f.openDev[c.Args[3]] = true
			}
		case "close":
			delete(f.open, c.Args[1])
		}
		return command.Result{}, nil
	case "lvm":
		switch c.Args[0] {
		case "vgs":
			pvs, missing := 2, 2-len(f.open)
			if f.pvs != nil {
				pvs, missing = len(f.pvs), 0
				for _, d := range f.pvs {
					if !f.openDev[d] {
						missing++
					}
				}
			}
			return command.Result{Stdout: fmt.Sprintf(`{"report":[{"vg":[{"vg_name":"vg0","pv_count":"%d","vg_missing_pv_count":"%d","vg_size":"1"}]}]}`, pvs, max(missing, 0))}, nil
		case "vgchange":
			f.active = c.Args[len(c.Args)-2] == "-ay"
		case "lvs":
			return command.Result{Stdout: `{"report":[{"lv":[{"vg_name":"vg0","lv_name":"data","lv_size":"1048576","lv_dm_path":"/dev/mapper/vg0-data","lv_attr":"-wi-a-----"}]}]}`}, nil
		}
		return command.Result{}, nil
	}
	return command.Result{ExitCode: 127}, nil
}

func TestOnePassphraseOpensEveryLUKSMember(t *testing.T) {
	a, f, c := twoLUKSMembers(t, "right", "right")
	ctx := context.Background()
	_, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("wrong"))
	wantCode(t, err, control.CodeWrongPassphrase, "a passphrase neither member takes")
	if len(f.open) != 0 || a.State() != control.StateReady {
		t.Fatalf("after a wrong passphrase: mappings %v, state %s", f.open, a.State())
	}
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	if !f.open["luksmount"] || !f.open["luksmount-2"] || !f.active {
		t.Fatalf("one passphrase should open both members and activate vg0: open %v, active %v", f.open, f.active)
	}
	m, err := c.Mount(ctx, control.MountRequest{})
	if err != nil || m.Label != "data" {
		t.Fatalf("Mount = %+v, %v; want vg0/data", m, err)
	}
	rep, err := a.Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true})
	if err != nil || !rep.Closed || len(f.open) != 0 || f.active {
		t.Fatalf("Shutdown = %+v, %v; open %v, vg active %v", rep, err, f.open, f.active)
	}
	// Deactivation comes before closing the mappings under it.
	var order []string
	for _, c := range f.cmds {
		if strings.HasPrefix(c, "lvm vgchange --config") && strings.Contains(c, "-an") || strings.HasPrefix(c, "cryptsetup close") {
			order = append(order, strings.Fields(c)[len(strings.Fields(c))-1])
		}
	}
	if strings.Join(order, ",") != "vg0,luksmount-2,luksmount" {
		t.Fatalf("teardown order %v; want vg0, luksmount-2, luksmount", order)
	}
}

func TestMissingMemberIsRefusedBeforeActivation(t *testing.T) {
	_, f, c := twoLUKSMembers(t, "right", "other")
	_, err := c.Unlock(context.Background(), control.UnlockRequest{}, []byte("right"))
	wantCode(t, err, control.CodeNotFound, "vg0 with one PV still locked")
	if !strings.Contains(err.Error(), "missing 1 of its 2") || f.active {
		t.Fatalf("error %v, active %v", err, f.active)
	}
}

func TestMembersWithDifferentPassphrases(t *testing.T) {
	_, f, c := twoLUKSMembers(t, "right", "other")
	ctx := context.Background()
	r, err := c.Unlock(ctx, control.UnlockRequest{Partial: true}, []byte("right"))
	if err != nil || len(r.Locked) != 1 || r.Locked[0] != "/dev/vdb" || f.active {
		t.Fatalf("partial unlock = %+v, %v (vg active %v); want /dev/vdb still locked, nothing assembled", r, err, f.active)
	}
	_, err = c.Unlock(ctx, control.UnlockRequest{Partial: true, Continue: true}, []byte("wrong"))
	wantCode(t, err, control.CodeWrongPassphrase, "a wrong passphrase for the second member")
	if r, err = c.Unlock(ctx, control.UnlockRequest{Partial: true, Continue: true}, []byte("other")); err != nil || len(r.Locked) != 0 {
		t.Fatalf("second member: %+v, %v", r, err)
	}
	if !f.open["luksmount"] || !f.open["luksmount-2"] || !f.active {
		t.Fatalf("open %v, vg active %v", f.open, f.active)
	}
	if _, err := c.Unlock(ctx, control.UnlockRequest{Continue: true}, []byte("other")); err == nil {
		t.Fatal("a Continue with nothing left locked was accepted")
	}
	if m, err := c.Mount(ctx, control.MountRequest{}); err != nil || m.Label != "data" {
		t.Fatalf("Mount = %+v, %v", m, err)
	}
}

// No passphrase for the member left locked: what is open is assembled, and the group says what
// it misses.
func TestSkippingALockedMember(t *testing.T) {
	_, f, c := twoLUKSMembers(t, "right", "other")
	ctx := context.Background()
	if r, err := c.Unlock(ctx, control.UnlockRequest{Partial: true}, []byte("right")); err != nil || len(r.Locked) != 1 {
		t.Fatalf("partial unlock = %+v, %v", r, err)
	}
	_, err := c.Unlock(ctx, control.UnlockRequest{Partial: true, Continue: true}, nil)
	wantCode(t, err, control.CodeNotFound, "vg0 without its second PV")
	if f.active {
		t.Fatal("vg0 was activated without its second PV")
	}
}

// twoLUKSMembers is an agent whose disks are two LUKS members (with these passphrases) of vg0.
func twoLUKSMembers(t *testing.T, passA, passB string) (*Agent, *lvmOnTwoLUKS, *control.Client) {
	a, _ := newTestAgent(t)
	f := &lvmOnTwoLUKS{pass: map[string]string{"/dev/vda": passA, "/dev/vdb": passB}, open: map[string]bool{}}
	a.deps.Run, a.crypt.Run = f, f
	a.deps.Disks = func() ([]control.Disk, error) {
		return []control.Disk{{Device: "/dev/vda", Size: 1 << 30}, {Device: "/dev/vdb", Size: 1 << 30}}, nil
	}
	return a, f, client(t, a)
}

// Three members with passphrases of their own, vg0 on the first and third: Return at the second's
// prompt (Skip) leaves only it locked; the third's passphrase is tried on the third alone, and
// what is open is assembled. A wrong one for the third is still wrong, and Skip never opens.
func TestSkippingOneOfSeveralLockedMembers(t *testing.T) {
	a, _ := newTestAgent(t)
	f := &lvmOnTwoLUKS{pass: map[string]string{"/dev/vda": "pa", "/dev/vdb": "pb", "/dev/vdc": "pc"},
		pvs: []string{"/dev/vda", "/dev/vdc"}, open: map[string]bool{}, openDev: map[string]bool{}}
	a.deps.Run, a.crypt.Run = f, f
	a.deps.Disks = func() ([]control.Disk, error) {
		return []control.Disk{{Device: "/dev/vda", Size: 1 << 30}, {Device: "/dev/vdb", Size: 1 << 30}, {Device: "/dev/vdc", Size: 1 << 30}}, nil
	}
	c := client(t, a)
	ctx := context.Background()
	r, err := c.Unlock(ctx, control.UnlockRequest{Partial: true}, []byte("pa"))
	if err != nil || strings.Join(r.Locked, ",") != "/dev/vdb,/dev/vdc" {
		t.Fatalf("partial unlock = %+v, %v; want vdb and vdc locked", r, err)
	}
	tries := func(dev string) int {
		n := 0
		for _, c := range f.cmds {
			if strings.HasPrefix(c, "cryptsetup open --type luks "+dev+" ") {
				n++
			}
		}
		return n
	}
	skip := control.UnlockRequest{Partial: true, Continue: true, Skip: []string{"/dev/vdb"}}
	_, err = c.Unlock(ctx, skip, []byte("pb"))
	wantCode(t, err, control.CodeWrongPassphrase, "the second member's passphrase when it is skipped")
	if tries("/dev/vdb") != 1 || f.openDev["/dev/vdb"] {
		t.Fatalf("a skipped member was tried (%d tries) or opened", tries("/dev/vdb"))
	}
	all := control.UnlockRequest{Partial: true, Continue: true, Skip: []string{"/dev/vdb", "/dev/vdc"}}
	_, err = c.Unlock(ctx, all, []byte("pc"))
	wantCode(t, err, control.CodeInvalidArgument, "a passphrase with every locked member skipped")
	if r, err = c.Unlock(ctx, skip, []byte("pc")); err != nil || len(r.Locked) != 0 {
		t.Fatalf("the third member after skipping the second: %+v, %v", r, err)
	}
	if !f.openDev["/dev/vdc"] || f.openDev["/dev/vdb"] || !f.active || tries("/dev/vdb") != 1 {
		t.Fatalf("open %v, vg active %v, vdb tried %d times", f.openDev, f.active, tries("/dev/vdb"))
	}
	if m, err := c.Mount(ctx, control.MountRequest{}); err != nil || m.Label != "data" {
		t.Fatalf("Mount = %+v, %v", m, err)
	}
}
