package doctor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/version"
)

// Local is the Env of this machine and process.
func Local() Env {
	exe, _ := os.Executable()
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return Env{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Version: version.String(), Euid: os.Geteuid(),
		Executable: exe,
		FindQEMU:   vm.FindQEMU,
		Run: func(name string, args ...string) ([]byte, error) {
			return exec.Command(name, args...).CombinedOutput()
		},
		ReadFile:      os.ReadFile,
		Stat:          os.Stat,
		QEMUOwnership: vm.QEMUOwnership,
		Sysctl:        sysctlUint32,
		KVM:           probeKVM,
		RawDiskAccess: func() error {
			return rawDiskAccess(session.Invoker().Home)
		},
		FindImages: func(arch string) (string, string, error) {
			im, err := images.Find(arch)
			if err != nil {
				return "", "", err
			}
			return im.Dir, im.Source, nil
		},
		VerifySums:  images.VerifySums,
		Writable:    writable,
		RuntimeDirs: session.RuntimeDirs(),
		LogDir:      session.LogDir(),
		Listen:      net.Listen,
	}
}

// writable checks dir, or the closest ancestor that exists (luksmount creates the rest), for
// write access without creating anything.
func writable(dir string) error {
	d := filepath.Clean(dir)
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := accessW(d); err != nil {
				if d == filepath.Clean(dir) {
					return fmt.Errorf("not writable: %w", err)
				}
				return fmt.Errorf("does not exist and %s is not writable: %w", d, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if d == filepath.Dir(d) {
			return errors.New("no parent directory exists")
		}
		d = filepath.Dir(d)
	}
}
