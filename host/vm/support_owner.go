package vm

import (
	"fmt"
	"os"
	"path/filepath"
)

// Ownership says who owns the QEMU binary the supervisor would run and the running luksmount,
// for `luksmount doctor`. The root supervisor runs QEMU from PATH or Homebrew's prefix; a QEMU
// writable by the same user who can already replace luksmount is no worse than luksmount
// itself, but one owned by someone else (or writable by group/others) widens who can get root at
// the next `sudo luksmount`.
type Ownership struct {
	QEMUPath, SelfPath   string // symlinks resolved
	QEMUUID, SelfUID     int
	QEMUWritableByOthers bool // group- or world-writable
}

// Mismatch reports whether the two binaries have different owners, or QEMU is writable by others.
func (o Ownership) Mismatch() bool { return o.QEMUUID != o.SelfUID || o.QEMUWritableByOthers }

// Warning is the one-line doctor message for a mismatch ("" when there is none).
func (o Ownership) Warning() string {
	switch {
	case o.QEMUWritableByOthers:
		return fmt.Sprintf("%s is writable by group or others, and sudo luksmount runs it as root; fix with chmod go-w %s", o.QEMUPath, o.QEMUPath)
	case o.QEMUUID != o.SelfUID:
		return fmt.Sprintf("%s belongs to uid %d but %s to uid %d; sudo luksmount runs that QEMU as root, so install both from the same place (e.g. both with Homebrew)", o.QEMUPath, o.QEMUUID, o.SelfPath, o.SelfUID)
	}
	return ""
}

// fileOwner is what ownership needs from the file system: the owner and mode of a resolved path.
type fileOwner func(path string) (uid int, mode os.FileMode, err error)

func ownership(qemuPath, selfPath string, resolve func(string) (string, error), owner fileOwner) (Ownership, error) {
	var o Ownership
	var err error
	if o.QEMUPath, err = resolve(qemuPath); err != nil {
		return o, fmt.Errorf("cannot resolve %s: %w", qemuPath, err)
	}
	if o.SelfPath, err = resolve(selfPath); err != nil {
		return o, fmt.Errorf("cannot resolve %s: %w", selfPath, err)
	}
	var qm os.FileMode
	if o.QEMUUID, qm, err = owner(o.QEMUPath); err != nil {
		return o, fmt.Errorf("cannot stat %s: %w", o.QEMUPath, err)
	}
	if o.SelfUID, _, err = owner(o.SelfPath); err != nil {
		return o, fmt.Errorf("cannot stat %s: %w", o.SelfPath, err)
	}
	o.QEMUWritableByOthers = qm.Perm()&0o022 != 0
	return o, nil
}

// QEMUOwnership finds the QEMU binary name (as FindQEMU does) and compares its owner with the
// running executable's.
func QEMUOwnership(name string) (Ownership, error) {
	q, err := FindQEMU(name)
	if err != nil {
		return Ownership{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return Ownership{}, err
	}
	return ownership(q, self, filepath.EvalSymlinks, statOwner)
}
