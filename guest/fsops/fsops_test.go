package fsops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

type fakeRun struct {
	got command.Cmd
	r   command.Result
}

func (f *fakeRun) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	f.got = c
	return f.r, nil
}

func TestCheckIsReadOnly(t *testing.T) {
	f := &fakeRun{r: command.Result{ExitCode: 4, Stdout: "Inode 12 has illegal blocks.\n"}}
	rep, err := Check(context.Background(), f, "/dev/mapper/luksmount")
	if err != nil {
		t.Fatal(err)
	}
	if f.got.Name != "e2fsck" || strings.Join(f.got.Args, " ") != "-n -f /dev/mapper/luksmount" {
		t.Fatalf("ran %s %q; want e2fsck -n -f", f.got.Name, f.got.Args)
	}
	if rep.Clean || rep.ExitCode != 4 || !strings.Contains(rep.Output, "illegal blocks") {
		t.Fatalf("Check = %+v; want unclean exit 4 with output", rep)
	}
	f.r = command.Result{}
	if rep, _ := Check(context.Background(), f, "/dev/vda"); !rep.Clean {
		t.Fatal("exit 0 not clean")
	}
}

func TestMkfsArgs(t *testing.T) {
	args, err := MkfsArgs("/dev/mapper/luksmount", "backup")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "-F -m0 -E lazy_itable_init=0,lazy_journal_init=0 -L backup /dev/mapper/luksmount" {
		t.Fatalf("MkfsArgs = %s", got)
	}
	if _, err := MkfsArgs("/dev/vda", strings.Repeat("x", 17)); !errors.Is(err, &control.Error{Code: control.CodeInvalidArgument}) {
		t.Fatalf("17-byte label: %v; want invalid-argument", err)
	}
	f := &fakeRun{r: command.Result{ExitCode: 1, Stderr: "/dev/vda is apparently in use by the system; will not make a filesystem here!"}}
	if err := Mkfs(context.Background(), f, "/dev/vda", ""); !errors.Is(err, control.ErrDeviceBusy) {
		t.Fatalf("Mkfs in use = %v; want device-busy", err)
	}
}

func TestHasRO(t *testing.T) {
	if !HasRO([]string{"noatime,ro"}) || HasRO([]string{"ro", "rw"}) || HasRO(nil) {
		t.Fatal("HasRO misreads options")
	}
}
