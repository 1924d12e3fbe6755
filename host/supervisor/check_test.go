package supervisor

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/luksmount/luksmount/pkg/control"
)

type checkUIFake struct {
	scriptUI
	answer   bool
	asked    []string
	progress []string
}

func (u *checkUIFake) Confirm(q string) (bool, error) {
	u.asked = append(u.asked, q)
	return u.answer, nil
}

func (u *checkUIFake) Progress(line string) {
	u.mu.Lock()
	u.progress = append(u.progress, line)
	u.mu.Unlock()
}

// checkVM is the fake VM with an agent that finds problems until a repair ran; roReply, if
// given, replaces its read-only pass's answer.
func checkVM(e *env, roReply ...control.CheckReply) (*fakeVM, *[]control.CheckRequest, *[]control.UnlockRequest) {
	f := &fakeVM{done: make(chan struct{}), right: "right"}
	var mu sync.Mutex
	var checks []control.CheckRequest
	var unlocks []control.UnlockRequest
	a, b := net.Pipe()
	srv := &control.Server{Handler: func(ctx context.Context, req *control.Request) (any, error) {
		switch req.Op {
		case control.OpCheck:
			var r control.CheckRequest
			req.Decode(&r)
			mu.Lock()
			checks = append(checks, r)
			mu.Unlock()
			if r.Repair {
				return control.CheckReply{ExitCode: 1, Repaired: true, FSType: "ext4", Tool: "e2fsck -y -f -C 0 /dev/mapper/luksmount", Output: "Root inode not allocated.  Allocate? yes"}, nil
			}
			if len(roReply) > 0 {
				return roReply[0], nil
			}
			return control.CheckReply{ExitCode: 4, FSType: "ext4", Tool: "e2fsck -n -f -C 0 /dev/mapper/luksmount", Output: "Root inode not allocated.  Allocate? no"}, nil
		case control.OpUnlock:
			var r control.UnlockRequest
			req.Decode(&r)
			mu.Lock()
			unlocks = append(unlocks, r)
			mu.Unlock()
		}
		return f.handle(ctx, req)
	}}
	go srv.ServeConn(context.Background(), a)
	f.client = control.NewClient(b, nil)
	e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) { return f, nil }
	return f, &checks, &unlocks
}

func TestCheckRepairAsksFirst(t *testing.T) {
	for _, c := range []struct {
		name           string
		repair, answer bool
		wantChecks     int
		wantRO         bool
		wantErr        bool
	}{
		{"read-only", false, false, 1, true, true},
		{"repair, yes", true, true, 2, false, false},
		{"repair, no", true, false, 1, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "luks2-argon2id.bin", "right")
			_, checks, unlocks := checkVM(e)
			ui := &checkUIFake{scriptUI: scriptUI{answers: []string{"wrong", "right"}}, answer: c.answer}
			res, err := Check(context.Background(), CheckOptions{Target: e.opts.Target, Repair: c.repair, UID: -1, GID: -1}, e.deps, ui)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil && (!errors.Is(err, control.ErrNeedsRepair) || !strings.Contains(err.Error(), "nothing was changed")) {
				t.Fatalf("err = %v", err)
			}
			if !c.repair && !strings.Contains(err.Error(), "luksmount check --repair") {
				t.Fatalf("the read-only check does not say how to repair: %v", err)
			}
			if len(*checks) != c.wantChecks || (*checks)[0].Repair {
				t.Fatalf("checks %+v", *checks)
			}
			if len(*unlocks) != 2 || (*unlocks)[1].ReadOnly != c.wantRO {
				t.Fatalf("unlocks %+v (a wrong passphrase, then the right one)", *unlocks)
			}
			if (len(ui.asked) == 1) != c.repair {
				t.Fatalf("asked %q", ui.asked)
			}
			if c.repair && c.answer && (!res.Repaired || !strings.Contains(res.Output, "Allocate? yes")) {
				t.Fatalf("result %+v", res)
			}
			if !strings.Contains(strings.Join(ui.progress, "\n"), "key derivation is argon2id") {
				t.Fatalf("no KDF note in progress: %q", ui.progress)
			}
			ui.allWiped(t)
			if !strings.Contains(e.log(t), "e2fsck -n -f -C 0") {
				t.Fatalf("log:\n%s", e.log(t))
			}
		})
	}
}

// A filesystem the guest will not repair (NTFS: Windows' chkdsk does) is refused before the
// question, so the user is never asked to agree to a repair that cannot happen.
func TestCheckRepairRefusedWithoutAsking(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	why := "luksmount does not repair NTFS; nothing was changed: repair it in Windows with `chkdsk /f X:`"
	_, checks, _ := checkVM(e, control.CheckReply{ExitCode: 1, FSType: "ntfs", Tool: "ntfsfix -n /dev/mapper/luksmount", Output: "Volume is corrupt", NoRepair: why})
	ui := &checkUIFake{scriptUI: scriptUI{answers: []string{"right"}}, answer: true}
	_, err := Check(context.Background(), CheckOptions{Target: e.opts.Target, Repair: true, UID: -1, GID: -1}, e.deps, ui)
	if err == nil || !errors.Is(err, control.ErrNeedsRepair) || !strings.Contains(err.Error(), "chkdsk /f") {
		t.Fatalf("err = %v", err)
	}
	if len(ui.asked) != 0 {
		t.Fatalf("asked %q before a refused repair", ui.asked)
	}
	if len(*checks) != 1 || (*checks)[0].Repair {
		t.Fatalf("checks %+v: only the read-only pass may run", *checks)
	}
	if !strings.Contains(e.log(t), "repair refused by the guest") {
		t.Fatalf("log:\n%s", e.log(t))
	}
}

// A check that fails after the boot powers the VM off forced: the deferred power-off sees the
// error the check ends with (issue 12.2's defer bug, which Check had copied).
func TestCheckFailurePowersOffForced(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	f, _, _ := checkVM(e)
	ui := &checkUIFake{scriptUI: scriptUI{answers: []string{"wrong", "wrong", "wrong"}}}
	if _, err := Check(context.Background(), CheckOptions{Target: e.opts.Target, UID: -1, GID: -1}, e.deps, ui); err == nil {
		t.Fatal("three wrong passphrases: no error")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.shutdowns) != 1 || !f.shutdowns[0].Force {
		t.Fatalf("shutdowns %+v, want one, forced", f.shutdowns)
	}
}
