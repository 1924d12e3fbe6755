package supervisor

import (
	"context"
	"strings"
	"testing"
)

// Format's deferred power-off sees the real error: a failed format forces the shutdown.
func TestFormatFailurePowersOffForced(t *testing.T) {
	e := newEnv(t, "ext4.bin", "") // the fake agent does not support Format
	_, err := Format(context.Background(), FormatOptions{Target: e.opts.Target, Type: "luks2", Force: true}, e.deps, []byte("pw"), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "cannot format") {
		t.Fatalf("Format: %v", err)
	}
	if len(e.vm.shutdowns) != 1 || !e.vm.shutdowns[0].Force {
		t.Fatalf("shutdowns %+v; want one, forced", e.vm.shutdowns)
	}
}
