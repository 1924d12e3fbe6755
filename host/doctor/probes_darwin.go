package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func sysctlUint32(name string) (uint32, error) { return unix.SysctlUint32(name) }

func probeKVM() error { return errors.New("no KVM on macOS") }

// rawDiskAccess tells whether this process has Full Disk Access. TCC answers EPERM, even to
// root, for /dev/rdisk* without it; a user cannot open raw disks anyway (root:operator 0640), so
// as a user the check opens the TCC database, which TCC guards behind the same permission.
// Needs a Mac to confirm: that both give EPERM without Full Disk Access and open with it.
func rawDiskAccess(home string) error {
	path := "/dev/rdisk0"
	if os.Geteuid() != 0 {
		path = filepath.Join(home, "Library", "Application Support", "com.apple.TCC", "TCC.db")
	}
	f, err := os.Open(path)
	if err == nil {
		f.Close()
		return nil
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("opening %s: operation not permitted (no Full Disk Access)", path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing to learn from
	}
	return fmt.Errorf("opening %s: %w", path, err)
}
