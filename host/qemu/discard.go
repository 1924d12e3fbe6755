package qemu

// discardOpt is the node option for d's discard policy. With unmap, QEMU turns the guest's TRIM
// into a hole punched in an image file (fallocate PUNCH_HOLE on Linux, fcntl F_PUNCHHOLE on
// macOS: block/file-posix.c handle_aiocb_discard) or BLKDISCARD on a Linux block device; QEMU's
// default, ignore, drops it. virtio-blk advertises discard by default (QEMU >= 4.0).
func discardOpt(d Disk) string {
	if d.Discard && !d.ReadOnly {
		return ",discard=unmap"
	}
	return ""
}
