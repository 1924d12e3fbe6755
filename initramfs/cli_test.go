package initramfs

import (
	"io"
	"strings"
	"testing"
)

func TestRunUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"build", "-arch", "amd64", "-variant", "nope", "-init", "x"}, `unknown variant "nope"`},
		{[]string{"build", "-arch", "riscv64", "-init", "x"}, `unsupported architecture "riscv64"`},
		{[]string{"build", "-arch", "arm64"}, "-init is required"},
		{[]string{"build", "-arch", "arm64", "-init", "x", "-lock", "/nonexistent/lock"}, "run `make lock`"},
		{[]string{"diff", "one"}, "two image files"},
	} {
		err := Run(c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%q) = %v; want an error containing %q", c.args, err, c.want)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if v, err := sourceDateEpoch(); err != nil || v != 1700000000 {
		t.Errorf("sourceDateEpoch() = %d, %v", v, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := sourceDateEpoch(); err == nil {
		t.Error("bad SOURCE_DATE_EPOCH accepted")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if v, err := sourceDateEpoch(); err != nil || v != 0 {
		t.Errorf("unset SOURCE_DATE_EPOCH: %d, %v; want 0", v, err)
	}
}
