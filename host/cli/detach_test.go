package cli

import (
	"os"
	"testing"
)

// The detached supervisor sits in /, so it keeps no volume busy, in a session of its own.
func TestSupervisorCommandIsDetached(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := supervisorCommand("/usr/local/bin/luksmount", f, f)
	if cmd.Dir != "/" {
		t.Fatalf("working directory %q; want /", cmd.Dir)
	}
	if cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setsid {
		t.Fatal("not in a session of its own (setsid)")
	}
	if len(cmd.Args) != 2 || cmd.Args[1] != superviseCmd || len(cmd.ExtraFiles) != 1 {
		t.Fatalf("args %q extra files %d", cmd.Args, len(cmd.ExtraFiles))
	}
}
