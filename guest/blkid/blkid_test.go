package blkid

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
)

func TestParseExport(t *testing.T) {
	out := "DEVNAME=/dev/vda\nUUID=90c5443e-10a7-4cbc-b99a-30c07184774f\nLABEL=My\\ Backups\nVERSION=2\nTYPE=crypto_LUKS\nUSAGE=crypto\n"
	in := ParseExport(out)
	if in.Type != "crypto_LUKS" || in.Label != "My Backups" || in.UUID != "90c5443e-10a7-4cbc-b99a-30c07184774f" || in.Version != "2" {
		t.Fatalf("ParseExport = %+v", in)
	}
}

type fakeRun struct{ r command.Result }

func (f fakeRun) Run(ctx context.Context, c command.Cmd) (command.Result, error) { return f.r, nil }

func TestProbeExitCodes(t *testing.T) {
	in, err := Probe(context.Background(), fakeRun{command.Result{ExitCode: 2}}, "/dev/vda")
	if err != nil || in.Type != "" {
		t.Fatalf("nothing found = %+v, %v; want empty info and no error", in, err)
	}
	if _, err := Probe(context.Background(), fakeRun{command.Result{ExitCode: 4, Stderr: "boom"}}, "/dev/vda"); err == nil {
		t.Fatal("blkid failure not reported")
	}
	in, err = Probe(context.Background(), fakeRun{command.Result{Stdout: "TYPE=ext4\n"}}, "/dev/vda")
	if err != nil || in.Type != "ext4" {
		t.Fatalf("Probe = %+v, %v", in, err)
	}
}

func TestListDisksFromFakeSys(t *testing.T) {
	sys := t.TempDir()
	write := func(p, v string) {
		os.MkdirAll(filepath.Dir(filepath.Join(sys, p)), 0o755)
		os.WriteFile(filepath.Join(sys, p), []byte(v+"\n"), 0o644)
	}
	write("vda/size", "524288")
	write("vda/ro", "0")
	write("vda/queue/logical_block_size", "4096")
	write("vda/vda1/partition", "1")
	write("vda/vda1/size", "2048")
	write("vdb/size", "100")
	write("vdb/ro", "1")
	write("loop0/size", "8")
	disks, err := ListDisks(sys)
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 3 {
		t.Fatalf("ListDisks = %+v; want vda, vda1, vdb", disks)
	}
	if d := disks[0]; d.Device != "/dev/vda" || d.Size != 524288*512 || d.LogicalBlockSize != 4096 || d.ReadOnly {
		t.Fatalf("vda = %+v", d)
	}
	if d := disks[1]; d.Device != "/dev/vda1" || d.Size != 2048*512 || d.LogicalBlockSize != 4096 {
		t.Fatalf("vda1 = %+v", d)
	}
	if d := disks[2]; d.Device != "/dev/vdb" || !d.ReadOnly || d.LogicalBlockSize != 512 {
		t.Fatalf("vdb = %+v", d)
	}
}
