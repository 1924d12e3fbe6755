package nfsmount

import (
	"context"
	"os/exec"
)

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, cred *Cred, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	setCred(cmd, cred)
	return cmd.CombinedOutput()
}
