package supervisor

import (
	"errors"
	"fmt"
	"testing"

	"github.com/luksmount/luksmount/pkg/control"
)

// An error the supervisor replies with keeps its class on the CLI's side, so the exit code is the
// one the supervisor's error maps to (errors.New(rep.Error) made every one of them exit 1).
func TestReplyKeepsErrorClass(t *testing.T) {
	cases := []struct {
		err  error
		want []error
	}{
		{fmt.Errorf("%w: /Volumes/x: resource busy", ErrMountBusy), []error{ErrMountBusy}},
		{fmt.Errorf("%w: signal: killed", ErrVMDied), []error{ErrVMDied}},
		{fmt.Errorf("%w: closed=false", ErrUncleanShutdown), []error{ErrUncleanShutdown}},
		{fmt.Errorf("%w: no such device", ErrHostMount), []error{ErrHostMount}},
		{fmt.Errorf("%w: %w", ErrUncleanShutdown, control.Errorf(control.CodeIOError, "I/O error")), []error{ErrUncleanShutdown, control.ErrIOError}},
	}
	for _, c := range cases {
		var rep socketReply
		rep.setError(c.err)
		got := rep.err()
		if got == nil || got.Error() != c.err.Error() {
			t.Fatalf("%v came back as %v", c.err, got)
		}
		for _, w := range c.want {
			if !errors.Is(got, w) {
				t.Errorf("%q lost its class %v", c.err, w)
			}
		}
		if errors.Is(got, ErrBoot) {
			t.Errorf("%q gained a class", c.err)
		}
	}
	var rep socketReply
	rep.setError(nil)
	if rep.err() != nil {
		t.Fatal("nil error came back as an error")
	}
}
