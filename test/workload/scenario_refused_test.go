//go:build linux

package workload

import (
	"context"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// On a filesystem that can do everything, each "refused" operation succeeds, so refused-ops
// must fail naming it (it checks refusals; it does not accept whatever happens).
func TestRefusedOpsFailsWhereTheyWork(t *testing.T) {
	for _, op := range []string{RefuseSymlink, RefuseHardlink, RefuseChmod, RefuseMknod} {
		opts := testOptions(t)
		opts.Refuses = []string{op}
		res, err := Run(context.Background(), t.TempDir(), regexp.MustCompile("^refused-ops$"), opts, nil)
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: %v %+v", op, err, res)
		}
		if res[0].OK || !strings.Contains(res[0].Error, "succeeded") {
			t.Fatalf("%s: refused-ops = %+v; want a failure saying it succeeded", op, res[0])
		}
	}
	res, _ := Run(context.Background(), t.TempDir(), regexp.MustCompile("^refused-ops$"), testOptions(t), nil)
	if len(res) != 1 || !res[0].Skipped {
		t.Fatalf("with nothing to refuse: %+v; want skipped", res)
	}
}

func TestRefusedRight(t *testing.T) {
	for _, e := range []error{errno(1), errno(95), errno(22), enotsupp} {
		if !refusedRight(e) {
			t.Errorf("%v is an honest refusal", e)
		}
	}
	if refusedRight(errno(5)) || refusedRight(nil) {
		t.Error("EIO or success accepted as a refusal")
	}
}

func errno(n int) error { return syscall.Errno(n) }
