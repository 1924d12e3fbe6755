//go:build vmtest

package e2e

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// envInt reads a test size knob (make soak raises them); def when unset or not a number.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// soakRow prints one row of `make soak`'s table (build.sh soak collects the SOAK| lines).
func soakRow(t *testing.T, what, size, result string) {
	t.Logf("SOAK|%s|%s|%s|%s", what, size, result, time.Since(testStart(t)).Round(time.Second))
}

var starts = map[string]time.Time{}

// testStart is when t (or its parent test) began, for the table's duration column.
func testStart(t *testing.T) time.Time {
	if s, ok := starts[t.Name()]; ok {
		return s
	}
	return time.Now()
}

// markStart records t's start for soakRow.
func markStart(t *testing.T) { starts[t.Name()] = time.Now() }
