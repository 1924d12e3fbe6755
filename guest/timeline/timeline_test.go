package timeline

import (
	"strings"
	"testing"

	"github.com/luksmount/luksmount/pkg/control"
)

func TestStepsCarryStartAndDuration(t *testing.T) {
	now := 1.0
	r := New(func() float64 { return now })
	var seen []control.Event
	r.AddSink(func(ev control.Event) { seen = append(seen, ev) })

	start := r.Now()
	now = 1.3456
	r.Step("modules", start, "%d loaded", 24)
	r.Progress("unlock", "deriving key")
	r.Logf("warn", "eth0 absent")
	r.Logf("debug", "noise")

	steps := r.Steps()
	if len(steps) != 1 || steps[0].Time != 1.0 || steps[0].Duration != 0.346 || steps[0].Message != "24 loaded" {
		t.Fatalf("steps = %+v; want one modules step at 1.0 lasting 0.346s", steps)
	}
	if got := len(r.Events()); got != 2 {
		t.Fatalf("kept %d events; want the step and the warning (progress and debug are not kept)", got)
	}
	if len(seen) != 4 {
		t.Fatalf("sink saw %d events; want all 4", len(seen))
	}
	if line := Format(steps[0]); !strings.Contains(line, "modules: 24 loaded (0.346s)") {
		t.Fatalf("Format = %q", line)
	}
}

func TestBootTimeAdvances(t *testing.T) {
	a := BootTime()
	b := BootTime()
	if a <= 0 || b < a {
		t.Fatalf("BootTime went %v -> %v; want positive and monotonic", a, b)
	}
}
