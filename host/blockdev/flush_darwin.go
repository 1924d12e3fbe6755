package blockdev

import "golang.org/x/sys/unix"

// dkiocSynchronizeCache is DKIOCSYNCHRONIZECACHE, _IO('d', 22), from xnu bsd/sys/disk.h.
const dkiocSynchronizeCache = 0x20006416

// Flush makes everything written to the target durable on the medium, the drive's volatile write
// cache included. On macOS neither QEMU's flush (fdatasync/fsync: QEMU block/file-posix.c
// handle_aiocb_flush) nor fsync reaches the drive's cache: fsync on a disk's character device
// returns at once (xnu bsd/miscfs/specfs/spec_vnops.c spec_fsync_internal: VCHR -> 0), and on
// APFS/HFS fsync stops at the drive (fsync(2)). A raw disk takes DKIOCSYNCHRONIZECACHE on the
// descriptor we hold, which IOStorageFamily's IOMediaBSDClient.cpp turns into
// IOMedia::synchronize (synchronizeCache in older releases); an image file takes fcntl F_FULLFSYNC,
// which asks the drive under its file system to flush (fcntl(2)).
func (d *Device) Flush() error {
	rc, err := d.File.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	// Control holds the descriptor open until the call returns, even if Close races with it.
	cerr := rc.Control(func(fd uintptr) {
		for {
			if d.IsImage {
				_, ferr = unix.FcntlInt(fd, unix.F_FULLFSYNC, 0)
			} else {
				ferr = unix.IoctlSetInt(int(fd), dkiocSynchronizeCache, 0) // _IO: the argument is unused
			}
			if ferr != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return ferr
}
