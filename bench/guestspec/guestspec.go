// Package guestspec is what the benchmark's host side and its two guest inits (the NFS client
// VM's and the kernel-nfsd VM's) agree on: where the config lives, the virtio-serial port names,
// and the JSON lines the guests write.
package guestspec

import (
	"fmt"

	"github.com/luksmount/luksmount/bench/workload"
)

// ConfigPath is where an init finds its Config (appended to the image as an extra cpio).
const ConfigPath = "/etc/lmbench/config.json"

// ResultsPort is the virtio-serial port guests write Lines to; StopPort is the one the nfsd
// guest reads "stop" from.
const (
	ResultsPort = "org.luksmount.bench"
	StopPort    = "org.luksmount.bench.stop"
)

// Modes.
const (
	ModeClient = "client" // kernel NFS client: mount Server and run the workload
	ModeLocal  = "local"  // unlock + mount the disk, run the workload on it
	ModeNFSD   = "nfsd"   // unlock + mount the disk, export it with the kernel's nfsd until stopped
	ModeNet    = "net"    // network only: the TCP stream server until stopped
)

// StreamPort is where server guests (nfsd and net modes) run the TCP stream server: a
// connection sends 'W' and then data until it half-closes (the guest answers with the byte count
// it read, 8 bytes big-endian), or 'R' and an 8-byte count (the guest sends that many bytes and
// closes).
const StreamPort = 5201

// KDFBench asks the nfsd guest for `cryptsetup benchmark` at these argon2 settings before it
// unlocks.
type KDFBench struct {
	PBKDF      string `json:"pbkdf"`
	MemoryKiB  int    `json:"memory_kib"`
	Parallel   int    `json:"parallel"`
	IterTimeMS int    `json:"iter_time_ms"`
}

// Config is one guest's job.
type Config struct {
	Mode string `json:"mode"`
	// Client mode: the server as the guest reaches it.
	Server       string `json:"server,omitempty"`
	NFSPort      int    `json:"nfs_port,omitempty"`
	MountPort    int    `json:"mount_port,omitempty"`
	Export       string `json:"export,omitempty"`
	MountOptions string `json:"mount_options,omitempty"`
	// Local and nfsd modes: the LUKS disk. Bench-only throwaway passphrase.
	Device     string `json:"device,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
	// NFSDThreads is rpc.nfsd's thread count; MountdPort is rpc.mountd's fixed port.
	NFSDThreads int `json:"nfsd_threads,omitempty"`
	MountdPort  int `json:"mountd_port,omitempty"`
	// ExportOptions are exportfs -o options.
	ExportOptions string          `json:"export_options,omitempty"`
	KDFBench      *KDFBench       `json:"kdf_bench,omitempty"`
	Workload      workload.Config `json:"workload"`
}

// MountData is the kernel NFS mount data for client mode: NFSv3 over TCP to fixed ports, no
// portmapper and no lock manager.
func (c Config) MountData() string {
	o := fmt.Sprintf("vers=3,proto=tcp,port=%d,mountport=%d,mountproto=tcp,nolock,addr=%s,mountaddr=%s",
		c.NFSPort, c.MountPort, c.Server, c.Server)
	if c.MountOptions != "" {
		o += "," + c.MountOptions
	}
	return o
}

// Line is one JSON line from a guest.
type Line struct {
	Kind    string           `json:"kind"` // step, result, ready, done, error
	Step    string           `json:"step,omitempty"`
	Seconds float64          `json:"seconds,omitempty"`
	Uptime  float64          `json:"uptime,omitempty"` // guest /proc/uptime when the line was written
	Result  *workload.Result `json:"result,omitempty"`
	// MemUsedKiB is MemTotal - MemAvailable when the line was written.
	MemUsedKiB int64  `json:"mem_used_kib,omitempty"`
	Error      string `json:"error,omitempty"`
	// Text is a tool's own output line (cryptsetup benchmark).
	Text string `json:"text,omitempty"`
}
