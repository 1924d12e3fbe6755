// Package clientvm boots a second small Linux VM whose kernel NFS client mounts a luksmount export
// (through the host's 127.0.0.1 forward, reached from QEMU user networking as 10.0.2.2) and runs the
// checked workload there: the closest stand-in on Linux for the macOS kernel client.
package clientvm

import (
	"encoding/json"
	"fmt"
)

// SpecPath is where the client finds its Spec: the host appends a small cpio archive holding it
// (and ManifestPath, if any) to the client image, so there is no command-line size limit.
const SpecPath = "/etc/lmtest/spec.json"

// ManifestPath holds a durability manifest handed to verify-manifest.
const ManifestPath = "/etc/lmtest/manifest"

// ResultsPort is the virtio-serial port the client writes its JSON lines to.
const ResultsPort = "org.luksmount.test"

// HostAlias is how QEMU user networking names the host's loopback inside the guest.
const HostAlias = "10.0.2.2"

// Spec is what the client VM does.
type Spec struct {
	Port         int    `json:"port"`   // the export's port on the host's 127.0.0.1
	Export       string `json:"export"` // MOUNT path
	MountOptions string `json:"mount_options,omitempty"`
	// Workload runs test/workload scenarios matching Run on the mount.
	Run        string `json:"run,omitempty"`
	Files      int    `json:"files,omitempty"`
	FSXSeconds int    `json:"fsx_seconds,omitempty"`
	Seed       int64  `json:"seed,omitempty"`
	Writers    int    `json:"writers,omitempty"`
	// UID and GID the workload runs as (0 = root).
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// NoUnmount leaves the mount in place at power-off (crash tests: the server dies first).
	NoUnmount bool `json:"no_unmount,omitempty"`
	// Durable writes files of DurableKiB random KiB one after another, fsyncing each (and its
	// directory) and streaming a "durable" line for it as soon as fsync returns, until Durable
	// files are written or the server dies: crash tests kill the server mid-stream.
	Durable    int    `json:"durable,omitempty"`
	DurableKiB int    `json:"durable_kib,omitempty"`
	DurableDir string `json:"durable_dir,omitempty"` // relative to the export root
	// Refuses: operations the served filesystem cannot do, comma-separated
	// (workload.Options.Refuses; a string keeps Spec comparable).
	Refuses string `json:"refuses,omitempty"`
}

// MountData is the kernel's text mount data for the export: NFSv3 over TCP straight to the given
// port for both MOUNT and NFS, no portmapper and no lock manager.
func (s Spec) MountData() string {
	o := fmt.Sprintf("vers=3,proto=tcp,port=%d,mountport=%d,mountproto=tcp,nolock,addr=%s,mountaddr=%s",
		s.Port, s.Port, HostAlias, HostAlias)
	if s.MountOptions != "" {
		o += "," + s.MountOptions
	}
	return o
}

// Line is one JSON line from the client.
type Line struct {
	Kind string `json:"kind"` // "step", "result", "manifest", "done", "error"
	// Step / error lines
	Step    string  `json:"step,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	Error   string  `json:"error,omitempty"`
	// Result lines (a test/workload Result, kept raw so this package needn't import it)
	Result json.RawMessage `json:"result,omitempty"`
	// Manifest lines (and durable lines: "name sha256hex")
	Manifest string `json:"manifest,omitempty"`
	// Done lines
	Passed int `json:"passed,omitempty"`
	Failed int `json:"failed,omitempty"`
}
