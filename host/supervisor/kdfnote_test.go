package supervisor

import (
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/session"
)

// TestUnlockShowsKDFCost: before the key derivation starts, the user and the log learn its cost
// and what to expect (the guest's ticker then reports the time elapsed every 2 s).
func TestUnlockShowsKDFCost(t *testing.T) {
	e := newEnv(t, "luks2-argon2id.bin", "right")
	ui := &scriptUI{answers: []string{"right"}}
	res, done := e.start(t, ui)
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	RequestStop(session.SocketPath(e.reg.Dirs[0], res.State.ID), false)
	<-done
	lines := strings.Join(ui.lines, "\n")
	if !strings.Contains(lines, "key derivation is argon2id with") || !strings.Contains(lines, "about 2 s") {
		t.Fatalf("progress:\n%s", lines)
	}
	if !strings.Contains(e.log(t), "unlock: key derivation is argon2id") {
		t.Fatalf("log:\n%s", e.log(t))
	}
}
