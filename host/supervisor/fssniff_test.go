package supervisor

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// A plain drive holding a filesystem the guest mounts (not LUKS, not ext) gets a VM; one with
// no filesystem at all is refused before any boot.
func TestPlainFilesystemsBootOthersRefused(t *testing.T) {
	for _, c := range []struct {
		name, magic string
		at          int
		boots       bool
	}{{"exfat", "EXFAT   ", 3, true}, {"xfs", "XFSB", 0, true}, {"nothing", "", 0, false}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "luks1-pbkdf2.bin", "right")
			data := make([]byte, 1<<20)
			copy(data[c.at:], c.magic)
			data[510], data[511] = 0x55, 0xAA
			os.WriteFile(e.opts.Target, data, 0o600)
			booted := false
			e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) {
				booted = true
				return nil, errors.New("test: no VM")
			}
			_, done := e.start(t, &scriptUI{})
			err := <-done
			if booted != c.boots {
				t.Fatalf("booted = %v (err %v); want %v", booted, err, c.boots)
			}
			if !c.boots && (err == nil || !strings.Contains(err.Error(), "exFAT, FAT, NTFS")) {
				t.Fatalf("err = %v; want the refusal naming what luksmount mounts", err)
			}
		})
	}
}
