package nfsserver

import "golang.org/x/sys/unix"

// syncDir makes a directory change durable before the reply on filesystems that ignore the
// dirsync mount option the agent always sets (Options.SyncDirs: btrfs, and NTFS on FUSE):
// NFSv3 promises the change is on disk when CREATE, MKDIR, REMOVE, RENAME or LINK answers.
func (s *Server) syncDir(dfd int) {
	if !s.opts.SyncDirs {
		return
	}
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Fsync(fd)
		unix.Close(fd)
	}
	if err != nil {
		s.opts.logf("cannot sync a directory after changing it: %v", err)
	}
}
