package blockdev

// Flush makes everything written to the target durable on the medium, the drive's volatile write
// cache included. On Linux fsync does that for both kinds: on a block device blkdev_fsync writes
// back the page cache and sends the device a cache flush (blkdev_issue_flush); on an image file
// the filesystem commits and flushes its own device (ext4/xfs/btrfs fsync issue the flush).
func (d *Device) Flush() error { return d.File.Sync() }
