package supervisor

import (
	"context"
	"io"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
)

// Machine is a running VM as the supervisor uses it.
type Machine interface {
	Control() *control.Client
	NFSAddr() string // 127.0.0.1:PORT, forwarded to the guest's NFS port
	Pid() int
	Accel() string
	Done() <-chan struct{} // closed when QEMU has exited
	Err() error            // why it exited (after Done)
	Kill() error
	// Shutdown asks the agent to sync, unmount, close and power off, and returns with QEMU gone
	// (escalating if the agent does not); QEMU's exit then counts as requested, not unexpected.
	Shutdown(ctx context.Context, force bool) (*control.ShutdownReply, error)
}

// BootSpec is what Boot needs to start a VM for a session.
type BootSpec struct {
	Device     *blockdev.Device
	MemoryMiB  int
	CPUs       int
	Accel      string             // "", auto, hvf, kvm, tcg
	Discard    bool               // pass TRIM through to the drive (--discard)
	Members    []*blockdev.Device // further devices of a multi-device target, after Device
	Header     *blockdev.Device   // a detached LUKS header file: read-only, after every other disk
	SessionDir string             // 0700: the VM's sockets go here
	ConsoleLog string             // where the guest console is kept (next to the session log)
	OnEvent    func(control.Event)
	OnQMPEvent func(vm.QMPEvent)                // QEMU's events (drive I/O errors)
	Logf       func(format string, args ...any) // host-side VM steps, for the session log
}

// Host is the platform's side of mounting: mount points, mount_nfs / mount -t nfs, unmount
// detection and the macOS "is it mounted already" check.
type Host interface {
	// CheckNotMounted refuses a device the host itself has mounted (saying how to unmount it).
	CheckNotMounted(dev *blockdev.Device) error
	// CanMount reports whether this host can mount NFS, and if not, why.
	CanMount() (bool, string)
	// PrepareMountpoint picks (if path is "") and creates the mount point; remove undoes it.
	PrepareMountpoint(path, label string, uid, gid int) (mp string, remove func(), err error)
	// Mount mounts the export at mp for the user uid:gid.
	Mount(ctx context.Context, addr, export, mp string, extra []string, uid, gid int) error
	// Unmount unmounts mp; force for a stale or busy mount.
	Unmount(ctx context.Context, mp string, force bool) error
	// ForceUnmount takes mp off at once, under a deadline, when its server (the VM) is gone.
	ForceUnmount(ctx context.Context, mp string) error
	// WatchUnmount sends nil once mp is no longer mounted (or an error if it can't watch).
	WatchUnmount(ctx context.Context, mp string) <-chan error
	// ServeOnlyHint is the command that would mount a served export.
	ServeOnlyHint(addr, export string) string
}

// Deps are the supervisor's collaborators. Default fills them for the real thing.
type Deps struct {
	Open     func(target string, readOnly bool) (*blockdev.Device, error)
	Boot     func(ctx context.Context, spec BootSpec) (Machine, error)
	Host     Host // nil = serve only
	Registry *session.Registry
	LogPath  func(id string) string
	// LogTee, if set, also receives the session log (--foreground streams it).
	LogTee io.Writer
	// Flush flushes the drive's write cache after the VM is gone; nil = blockdev's Device.Flush.
	Flush func(*blockdev.Device) error
}
