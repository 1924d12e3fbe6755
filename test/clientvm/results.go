package clientvm

import (
	"encoding/json"
	"strings"

	"github.com/luksmount/luksmount/test/workload"
)

// Scenarios decodes the client's result lines: one workload.Result per scenario run (a line that
// does not decode is one named "?", failed, with the decoder's error).
func (r *Report) Scenarios() []workload.Result {
	out := make([]workload.Result, 0, len(r.Results))
	for _, raw := range r.Results {
		var res workload.Result
		if err := json.Unmarshal(raw, &res); err != nil {
			res = workload.Result{Name: "?", Error: "bad result line: " + err.Error()}
		}
		out = append(out, res)
	}
	return out
}

// LogResults logs one line per scenario (name, seconds, ok / SKIPPED / FAILED: error, details)
// through logf (a test's t.Logf) and returns the scenarios.
func (r *Report) LogResults(logf func(format string, args ...any)) []workload.Result {
	res := r.Scenarios()
	for _, s := range res {
		status := "ok"
		switch {
		case s.Skipped:
			status = "SKIPPED"
		case !s.OK:
			status = "FAILED: " + s.Error
		}
		logf("%-22s %8.2fs  %s %s", s.Name, float64(s.DurationMS)/1000, status, strings.Join(s.Details, "; "))
	}
	return res
}
