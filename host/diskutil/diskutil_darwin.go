package diskutil

// New returns a Tool running /usr/sbin/diskutil.
func New() *Tool { return &Tool{Path: "/usr/sbin/diskutil", Runner: execRunner{}} }
