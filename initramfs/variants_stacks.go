package initramfs

// The agent image's storage-stack tools (trim, resize, LVM, RAID), referenced from variants.go.

// stackBinaries are the stack tools copied into the agent image (fstrim is in util-linux).
var stackBinaries = []string{"/sbin/fstrim"}
