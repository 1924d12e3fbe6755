package control

import "context"

// Operations for the storage stack of a mounted drive: trim and grow.
const (
	OpTrim   Op = "trim"   // TrimRequest -> TrimReply (FITRIM on the mounted filesystem)
	OpResize Op = "resize" // ResizeRequest -> ResizeReply (grow mapping and filesystem to the disk)
)

// TrimRequest discards the mounted filesystem's free space down to the drive (fstrim).
type TrimRequest struct{}

// TrimReply says how much the filesystem reported as discarded.
type TrimReply struct {
	TrimmedBytes int64 `json:"trimmed_bytes"`
}

// ResizeRequest grows the open mapping and the mounted filesystem to fill the disk, once the
// host has grown the disk to DiskBytes (the agent waits for the guest kernel to see that size).
type ResizeRequest struct {
	DiskBytes int64 `json:"disk_bytes"`
}

// ResizeReply reports the sizes after growing.
type ResizeReply struct {
	DiskBytes int64  `json:"disk_bytes"`
	FSBytes   int64  `json:"fs_bytes"` // statfs total of the mounted filesystem
	FSType    string `json:"fstype"`
	Tool      string `json:"tool"` // the grow command that ran
}

// Trim runs fstrim on the mounted filesystem.
func (c *Client) Trim(ctx context.Context) (*TrimReply, error) {
	var r TrimReply
	return &r, c.Call(ctx, OpTrim, TrimRequest{}, nil, &r)
}

// Resize grows the mapping and filesystem to the (already grown) disk.
func (c *Client) Resize(ctx context.Context, req ResizeRequest) (*ResizeReply, error) {
	var r ResizeReply
	return &r, c.Call(ctx, OpResize, req, nil, &r)
}

// Stack is how unlock and mount choose among the volumes of a layered drive (partitions, LVM,
// RAID, several LUKS members).
type Stack struct {
	// Volume names the filesystem to mount when the drive holds several: "vg/lv" (LVM), "p2"
	// (partition 2; "d2p1" on the second device), "md/name" (RAID), or a filesystem label.
	Volume string `json:"volume,omitempty"`
	// AllowDegraded assembles a RAID array missing members read-write (default: read-only).
	AllowDegraded bool `json:"allow_degraded,omitempty"`
}

// Volume is one device of an assembled stack: a partition, RAID array, logical volume or LUKS
// mapping, with what it holds.
type Volume struct {
	Name   string `json:"name"`   // what --volume takes ("" = the whole drive)
	Device string `json:"device"` // the guest's device
	Type   string `json:"type,omitempty"`
	Label  string `json:"label,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// ProbeStack is Probe with options: Assemble also brings up RAID and LVM and lists the volumes.
func (c *Client) ProbeStack(ctx context.Context, req ProbeRequest) (*ProbeReply, error) {
	var r ProbeReply
	return &r, c.Call(ctx, OpProbe, req, nil, &r)
}

// Crypt selects a container other than LUKS for unlock.
type Crypt struct {
	// Type is "" (LUKS), "bitlk" (BitLocker: password or recovery key) or "tcrypt" (VeraCrypt or
	// TrueCrypt, which have no signature: only the user can say a drive is one).
	Type      string `json:"type,omitempty"`
	TrueCrypt bool   `json:"truecrypt,omitempty"` // tcrypt: a TrueCrypt volume (default VeraCrypt)
	PIM       int    `json:"pim,omitempty"`       // tcrypt: VeraCrypt's personal iterations multiplier
	Hidden    bool   `json:"hidden,omitempty"`    // tcrypt: open the hidden volume
	// SecretPIM: the PIM is asked for like the password and travels in the unlock secret, never
	// in argv or a message body: the secret starts with its decimal digits and a newline.
	SecretPIM bool `json:"secret_pim,omitempty"`
	// KeyFileSize: the unlock secret ends with a VeraCrypt keyfile of this many bytes, after the
	// password and a newline.
	KeyFileSize int `json:"keyfile_size,omitempty"`
}
