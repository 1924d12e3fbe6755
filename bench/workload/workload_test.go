package workload

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func small() Config {
	return Config{SeqBytes: 3<<20 + 123, ReqSize: 1 << 20, RandReads: 200, SmallFiles: 300}
}

func TestRunOnTempDir(t *testing.T) {
	dir := t.TempDir()
	drops := 0
	var reported []string
	res, err := Run(context.Background(), dir, small(), Env{
		DropCaches: func() error { drops++; return nil },
		Report:     func(r Result) { reported = append(reported, r.Step) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(Steps) || strings.Join(reported, ",") != strings.Join(Steps, ",") {
		t.Fatalf("steps = %v, want %v", reported, Steps)
	}
	for _, r := range res {
		if r.Seconds <= 0 || r.Rate <= 0 || r.Ops <= 0 {
			t.Errorf("%s: implausible %+v", r.Step, r)
		}
	}
	if res[0].Bytes != 3<<20+123 || res[0].Ops != 4 || res[0].Unit != "MB/s" {
		t.Errorf("seq-write = %+v", res[0])
	}
	if res[3].Ops != 300 || res[3].Unit != "ops/s" {
		t.Errorf("create = %+v", res[3])
	}
	if drops != 4 {
		t.Errorf("caches dropped %d times, want 4 (before each read step)", drops)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("work directory left behind: %v", left)
	}
}

func TestOnlyKeepsPrerequisites(t *testing.T) {
	c := small()
	c.Only = []string{RandRead, ListLong}
	res, err := Run(context.Background(), t.TempDir(), c, Env{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Step)
	}
	if strings.Join(got, ",") != "seq-write,rand-read-4k,create,ls-l" {
		t.Fatalf("steps = %v", got)
	}
}

// A filesystem that returns wrong data must fail the run, not produce a number.
func TestSeqReadCatchesCorruption(t *testing.T) {
	dir := t.TempDir()
	c := small().WithDefaults()
	c.Only = []string{SeqRead}
	_, err := Run(context.Background(), dir, c, Env{DropCaches: func() error {
		// Corrupt the file the write step just made, where the read step will look.
		m, _ := filepath.Glob(filepath.Join(dir, "lmbench-*", "seq.bin"))
		if len(m) != 1 {
			t.Fatalf("seq file not found: %v", m)
		}
		f, err := os.OpenFile(m[0], os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte("corrupt!"), 2<<20+512)
		return err
	}})
	if err == nil || !strings.Contains(err.Error(), "content differs in request 2") {
		t.Fatalf("err = %v, want content mismatch in request 2", err)
	}
}

func TestRandReadCatchesCorruption(t *testing.T) {
	dir := t.TempDir()
	c := Config{SeqBytes: 64 << 10, ReqSize: 16 << 10, RandReads: 50, SmallFiles: 1, Only: []string{RandRead}}
	_, err := Run(context.Background(), dir, c, Env{DropCaches: func() error {
		m, _ := filepath.Glob(filepath.Join(dir, "lmbench-*", "seq.bin"))
		return os.WriteFile(m[0], make([]byte, 64<<10), 0o644)
	}})
	if err == nil || !strings.Contains(err.Error(), "content differs at offset") {
		t.Fatalf("err = %v, want content mismatch", err)
	}
}
