// Package channel opens the agent's links to the host: the virtio-serial port named
// control.PortName and, where the VM has one, an AF_VSOCK listener. Each yields connections that
// the control server serves one at a time (serial) or concurrently (vsock).
package channel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SysVirtioPorts is where the kernel lists virtio-serial ports; there is no udev to make
// /dev/virtio-ports/<name> symlinks, so ports are found by the name file here.
const SysVirtioPorts = "/sys/class/virtio-ports"

// ErrNoPort means no virtio-serial port with the wanted name exists (yet).
var ErrNoPort = errors.New("no virtio-serial port with that name")

// FindPort returns the /dev path of the port named name, looking under sysDir
// (SysVirtioPorts in the guest, a fake tree in tests).
func FindPort(sysDir, name string) (string, error) {
	dirs, err := filepath.Glob(filepath.Join(sysDir, "*", "name"))
	if err != nil {
		return "", err
	}
	sort.Strings(dirs)
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(p)), nil
		}
	}
	return "", fmt.Errorf("%w: %q under %s", ErrNoPort, name, sysDir)
}
