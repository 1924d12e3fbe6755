package supervisor

import (
	"os"
	"runtime"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/vm"
)

// addMembers presents a multi-device target's further devices as /dev/vdb, /dev/vdc, ... with
// the first device's treatment (descriptor passing, discard).
func addMembers(vs *vm.Spec, spec BootSpec, invoking *vm.User) {
	for _, d := range spec.Members {
		vs.Config.Disks = append(vs.Config.Disks, qemu.Disk{
			Path: d.Path, HostDevice: !d.IsImage, ReadOnly: d.ReadOnly,
			LogicalBlockSize: d.LogicalBlockSize, PhysicalBlockSize: d.PhysicalBlockSize,
			Discard: spec.Discard,
		})
		files, _ := vm.Unprivileged(runtime.GOOS, os.Geteuid(), invoking, d.File, !d.IsImage)
		if len(vs.DiskFiles) == len(vs.Config.Disks)-1 && len(files) == 1 {
			vs.DiskFiles = append(vs.DiskFiles, files[0])
		}
	}
}
