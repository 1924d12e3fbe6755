package supervisor

import (
	"bytes"
	"fmt"
	"os"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/pkg/control"
)

// unpackFailed is what the guest kernel prints (KERN_EMERG, so even with quiet: Linux
// init/initramfs.c do_populate_rootfs) when the initramfs does not fit in the VM's RAM. The agent
// still starts, but the files after the failure point are missing, and whatever needs them fails
// later with a confusing error (cryptsetup without libpopt). The kernel prints it before it runs
// init, so it is on the console by the time the agent answers Hello.
var unpackFailed = []byte("Initramfs unpacking failed")

// LowMemoryError says the VM was too small to unpack the guest image.
type LowMemoryError struct {
	VMMiB  int
	Detail string // the kernel's words after the marker ("write error")
}

func (e *LowMemoryError) Error() string {
	return fmt.Sprintf("the VM has too little memory to unpack the guest image (%d MiB; the kernel says %q); retry with --memory %d",
		e.VMMiB, e.Detail, e.Retry())
}

// Retry is the --memory to suggest: at least the default for an unencrypted drive, and 128 MiB
// more than what failed (the image is ~40 MiB unpacked next to its ~15 MiB compressed copy).
func (e *LowMemoryError) Retry() int {
	m := (e.VMMiB + 128 + 63) / 64 * 64
	return max(m, qemu.PlainMemoryMiB)
}

// Is makes it an out-of-memory failure for exit codes (7).
func (e *LowMemoryError) Is(target error) bool { return target == control.ErrOutOfMemory }

// bootRecord is the console file and size of the VM s booted last.
type bootRecord struct {
	console   string
	memoryMiB int
}

// unpackError reads the console of the VM s booted last: a *LowMemoryError if the kernel could
// not unpack the whole image, else nil (also without a console file).
func (s *sup) unpackError() error {
	return consoleUnpackError(s.booted.console, s.booted.memoryMiB)
}

func consoleUnpackError(console string, memoryMiB int) error {
	if console == "" {
		return nil
	}
	b, err := os.ReadFile(console)
	if err != nil {
		return nil
	}
	i := bytes.Index(b, unpackFailed)
	if i < 0 {
		return nil
	}
	rest := b[i+len(unpackFailed):]
	if j := bytes.IndexAny(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	return &LowMemoryError{VMMiB: memoryMiB, Detail: string(bytes.TrimSpace(bytes.TrimPrefix(rest, []byte(":"))))}
}
