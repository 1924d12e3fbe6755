package diskutil

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// execRunner runs commands with os/exec, folding stderr into errors.
type execRunner struct{}

// Output implements Runner.
func (execRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return out, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return out, err
}
