package supervisor

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/pkg/luksheader"
)

// A LUKS1 header whose hash the guest cannot compute is refused before any boot, with a message
// that does not blame the drive (no "corrupt", no luksHeaderRestore), and the drive untouched.
func TestUnsupportedHeaderRefusedBeforeBoot(t *testing.T) {
	e := newEnv(t, "luks1-pbkdf2.bin", "right")
	data, _ := os.ReadFile(e.opts.Target)
	clear(data[72:104])
	copy(data[72:], "gost") // LUKS1 hash-spec field
	os.WriteFile(e.opts.Target, data, 0o600)
	booted := false
	e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) { booted = true; return e.vm, nil }
	_, done := e.start(t, &scriptUI{answers: []string{"right"}})
	err := <-done
	if !errors.Is(err, luksheader.ErrUnsupported) || errors.Is(err, luksheader.ErrCorrupt) ||
		!strings.Contains(err.Error(), "the hash gost, which luksmount's guest cannot open yet; nothing was changed") ||
		strings.Contains(err.Error(), "restore") {
		t.Fatalf("err = %v; want unsupported naming the hash", err)
	}
	if booted {
		t.Error("a VM was booted for a drive the guest cannot open")
	}
	after, _ := os.ReadFile(e.opts.Target)
	if string(after) != string(data) {
		t.Error("the drive changed")
	}
	e.noSessions(t)
}
