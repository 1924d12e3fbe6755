package timeline

import (
	"fmt"

	"github.com/luksmount/luksmount/pkg/control"
)

// Fault records a log line tagged with step (fault:drive, fault:fs, ...), which the host turns
// into the session's state as well as a log line.
func (r *Recorder) Fault(step, level, format string, args ...any) {
	r.emit(control.Event{Kind: control.EventLog, Time: round(r.now()), Step: step, Level: level,
		Message: fmt.Sprintf(format, args...)}, true)
}
