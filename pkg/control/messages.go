package control

// Op names a request. Each has a request and a reply type below.
type Op string

// Operations the agent serves.
const (
	OpHello    Op = "hello"    // HelloRequest -> HelloReply
	OpProbe    Op = "probe"    // ProbeRequest -> ProbeReply
	OpUnlock   Op = "unlock"   // UnlockRequest + secret -> UnlockReply
	OpMount    Op = "mount"    // MountRequest -> MountReply
	OpCheck    Op = "check"    // CheckRequest -> CheckReply (read-only e2fsck -n)
	OpServe    Op = "serve"    // ServeRequest -> ServeReply
	OpStatus   Op = "status"   // StatusRequest -> StatusReply
	OpShutdown Op = "shutdown" // ShutdownRequest -> ShutdownReply, then the VM powers off
	OpFormat   Op = "format"   // FormatRequest + secret -> FormatReply
)

// request is the JSON body of a request frame.
type request struct {
	Op   Op  `json:"op"`
	Args any `json:"args,omitempty"`
}

// response is the JSON body of a response frame: exactly one of Error and Result is set.
type response struct {
	Error  *Error `json:"error,omitempty"`
	Result any    `json:"result,omitempty"`
}

// HelloRequest opens a session.
type HelloRequest struct {
	HostVersion     string `json:"host_version"`
	ProtocolVersion int    `json:"protocol_version"`
}

// HelloReply describes the agent and carries the timeline recorded so far.
type HelloReply struct {
	AgentVersion    string  `json:"agent_version"`
	ProtocolVersion int     `json:"protocol_version"`
	Kernel          string  `json:"kernel"` // uname -r
	Arch            string  `json:"arch"`   // GOARCH
	State           State   `json:"state"`
	Timeline        []Event `json:"timeline"`
}

// ProbeRequest asks what is on the VM's disks.
type ProbeRequest struct {
	Assemble bool `json:"assemble,omitempty"` // also assemble RAID and LVM and list the volumes
	Stack
}

// ProbeReply lists each disk the agent sees, as blkid describes it.
type ProbeReply struct {
	Disks   []Disk   `json:"disks"`
	Volumes []Volume `json:"volumes,omitempty"` // with Assemble (stack_messages.go)
}

// Disk is one block device in the guest.
type Disk struct {
	Device           string    `json:"device"` // /dev/vda
	Size             int64     `json:"size"`   // bytes
	LogicalBlockSize int       `json:"logical_block_size"`
	ReadOnly         bool      `json:"read_only"`
	Type             string    `json:"type,omitempty"` // blkid TYPE: crypto_LUKS, ext4, ... ("" = unknown)
	Label            string    `json:"label,omitempty"`
	UUID             string    `json:"uuid,omitempty"`
	LUKS             *LUKSInfo `json:"luks,omitempty"`
}

// LUKSInfo is what the agent read from a LUKS header.
type LUKSInfo struct {
	Version      int    `json:"version"`        // 1 or 2
	KDF          string `json:"kdf"`            // of the most expensive keyslot: argon2id, argon2i, pbkdf2
	MaxMemoryKiB int64  `json:"max_memory_kib"` // largest KDF memory cost of any keyslot
	Keyslots     int    `json:"keyslots"`
}

// UnlockRequest opens a LUKS device. The passphrase or key file content is the frame's secret.
type UnlockRequest struct {
	Device   string `json:"device"`              // "" = the first LUKS disk
	ReadOnly bool   `json:"read_only,omitempty"` // open the mapping read-only
	KeyFile  bool   `json:"key_file,omitempty"`  // the secret is key file content, not a typed passphrase
	// AllowDiscards passes TRIM through dm-crypt (cryptsetup --allow-discards): opt-in, see README.
	AllowDiscards bool `json:"allow_discards,omitempty"`
	Stack              // the volume to open and how to assemble (stack_messages.go)
	Crypt              // BitLocker or VeraCrypt instead of LUKS (stack_messages.go)
	// Partial: LUKS members this secret does not open stay locked and are named in the reply
	// (nothing is assembled yet); Continue opens them with another secret after a Partial reply.
	Partial  bool `json:"partial,omitempty"`
	Continue bool `json:"continue,omitempty"`
	// Header: the LUKS header is detached, on the read-only disk whose serial is HeaderSerial
	// (header.go); Device (or the first disk) holds only the encrypted data.
	Header bool `json:"header,omitempty"`
	// Skip: with Continue, the guest devices the user left locked (Return at their prompt): the
	// secret is not tried on them and they are not named in Locked again.
	Skip []string `json:"skip,omitempty"`
}

// UnlockReply names the opened mapping.
type UnlockReply struct {
	Mapper string   `json:"mapper"`           // /dev/mapper/luksmount
	Locked []string `json:"locked,omitempty"` // Partial: the guest devices still locked
}

// MountRequest mounts a filesystem: the unlocked mapping, else the named device, else the first disk.
type MountRequest struct {
	Device  string   `json:"device,omitempty"`
	Options []string `json:"options,omitempty"` // guest mount options: ro, noatime, ...
	Stack
}

// MountReply describes the mounted filesystem.
type MountReply struct {
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Label      string `json:"label,omitempty"`
	UUID       string `json:"uuid,omitempty"`
	ReadOnly   bool   `json:"read_only"`
	RootUID    uint32 `json:"root_uid"` // owner of the filesystem root
	RootGID    uint32 `json:"root_gid"`
	Notice     string `json:"notice,omitempty"` // why it is read-only when nobody asked (a degraded RAID)
}

// CheckRequest runs a read-only filesystem check (e2fsck -n) on an unmounted device.
type CheckRequest struct {
	Device string `json:"device,omitempty"` // "" = the unlocked mapping, else the first disk
	// Repair lets the tool write its fixes (e2fsck -y, xfs_repair, btrfs check --repair); the
	// mapping must be open read-write.
	Repair bool `json:"repair,omitempty"`
}

// CheckReply reports the check.
type CheckReply struct {
	Clean    bool   `json:"clean"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
	FSType   string `json:"fstype,omitempty"`
	Tool     string `json:"tool,omitempty"`     // the command line that ran
	Repaired bool   `json:"repaired,omitempty"` // Repair ran and fixed what it found
	// NoRepair, on a read-only pass that found problems, is why luksmount will not repair this
	// filesystem and what to do instead: the host then refuses --repair without asking first.
	NoRepair string `json:"no_repair,omitempty"`
}

// ServeRequest starts the NFS server on the mounted filesystem.
type ServeRequest struct {
	Port      int    `json:"port,omitempty"` // 0 = 2049
	ClientUID uint32 `json:"client_uid"`     // the host user who mounts
	ClientGID uint32 `json:"client_gid"`
	// Owner is how ids map: "" = new files get the filesystem root's owner and files appear owned by
	// the client user; "UID:GID" = new files get these ids; "none" = ids pass through unchanged.
	Owner string `json:"owner,omitempty"`
}

// ServeReply says where the export is reachable inside the VM network.
type ServeReply struct {
	Address string `json:"address"` // 192.168.127.2:2049
	Export  string `json:"export"`  // the MOUNT path: "/"
}

// StatusRequest asks for the agent's state.
type StatusRequest struct{}

// State is the agent's lifecycle state.
type State string

// Agent states, in lifecycle order.
const (
	StateReady        State = "ready"    // booted, nothing open
	StateUnlocked     State = "unlocked" // mapping open
	StateMounted      State = "mounted"  // filesystem mounted
	StateServing      State = "serving"  // NFS server running
	StateShuttingDown State = "stopping" // shutdown in progress
	StateFailed       State = "failed"   // a step failed; see the timeline
)

// StatusReply is a snapshot of the agent.
type StatusReply struct {
	State           State   `json:"state"`
	Mapper          string  `json:"mapper,omitempty"`
	Mountpoint      string  `json:"mountpoint,omitempty"`
	FSType          string  `json:"fstype,omitempty"`
	Label           string  `json:"label,omitempty"`
	ServeAddress    string  `json:"serve_address,omitempty"`
	UptimeSeconds   float64 `json:"uptime_seconds"`
	MemTotalKiB     int64   `json:"mem_total_kib"`
	MemAvailableKiB int64   `json:"mem_available_kib"`
}

// ShutdownRequest stops serving, syncs, unmounts, closes the mapping and powers off.
type ShutdownRequest struct {
	// Force powers off even if the filesystem stays busy or the mapping can't be closed.
	Force bool `json:"force,omitempty"`
	// NoPowerOff leaves the VM running after closing everything (tests, and reuse).
	NoPowerOff bool `json:"no_power_off,omitempty"`
}

// ShutdownReply reports each step; it is sent before the power-off.
type ShutdownReply struct {
	Synced    bool    `json:"synced"`
	Unmounted bool    `json:"unmounted"`
	Closed    bool    `json:"closed"`
	Steps     []Event `json:"steps"`
}

// FormatRequest creates a new LUKS container and/or ext4 filesystem. The passphrase is the secret.
type FormatRequest struct {
	Device string `json:"device,omitempty"` // "" = the first disk
	Type   string `json:"type"`             // luks2, luks1 or none
	Label  string `json:"label,omitempty"`
	FS     string `json:"fs,omitempty"` // ext4 (""), btrfs, xfs, exfat, vfat or ntfs
	// KDF settings with cryptsetup's meanings; zero values keep cryptsetup's defaults.
	PBKDF                string `json:"pbkdf,omitempty"` // argon2id (default for luks2), argon2i, pbkdf2
	PBKDFMemoryKiB       int    `json:"pbkdf_memory_kib,omitempty"`
	IterTimeMS           int    `json:"iter_time_ms,omitempty"`
	PBKDFForceIterations int    `json:"pbkdf_force_iterations,omitempty"`
	// Cipher (dm-crypt spec, e.g. serpent-xts-plain64), its key size in bits and the LUKS hash;
	// empty or zero keep cryptsetup's defaults.
	Cipher      string `json:"cipher,omitempty"`
	KeySizeBits int    `json:"key_size_bits,omitempty"`
	Hash        string `json:"hash,omitempty"`
}

// FormatReply describes what was created.
type FormatReply struct {
	LUKSUUID string `json:"luks_uuid,omitempty"`
	FSUUID   string `json:"fs_uuid"`
	Label    string `json:"label,omitempty"`
}

// EventKind classifies an event.
type EventKind string

// Event kinds.
const (
	EventStep     EventKind = "step"     // a timeline step finished (Duration set)
	EventProgress EventKind = "progress" // a long step is under way ("deriving key...")
	EventLog      EventKind = "log"      // a log line
)

// Event is a timeline entry, progress note or log line from the agent. Time is seconds since the
// guest kernel started (CLOCK_BOOTTIME), so the first steps cover kernel boot.
type Event struct {
	Kind     EventKind `json:"kind"`
	Time     float64   `json:"time"`
	Step     string    `json:"step,omitempty"`
	Duration float64   `json:"duration,omitempty"` // seconds
	Level    string    `json:"level,omitempty"`    // info, warn, error
	Message  string    `json:"message,omitempty"`
}
