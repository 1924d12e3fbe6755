package nfsserver

import (
	"github.com/luksmount/luksmount/guest/rpcfront"
	"github.com/luksmount/luksmount/guest/xdr"
	"golang.org/x/sys/unix"
)

// FSSTAT, FSINFO and PATHCONF: what the filesystem can hold and do.

// fsQuery is their common start: decode the object's handle, write the
// status and its post_op_attr, and return the filesystem's statfs (nil when
// the reply is already complete or the arguments are garbage).
func (s *Server) fsQuery(r *xdr.Reader, w *xdr.Writer) *unix.Statfs_t {
	h := fh(r)
	if r.Err() != nil {
		return nil
	}
	st, err := s.statHandle(h)
	var sfs unix.Statfs_t
	if err == nil {
		err = unix.Fstatfs(s.table.RootFd(), &sfs)
	}
	w.Uint32(status(err))
	s.postOpAttr(w, st)
	if err != nil {
		return nil
	}
	return &sfs
}

func (s *Server) fsstat(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	sfs := s.fsQuery(r, w)
	if sfs == nil {
		return
	}
	bs := uint64(sfs.Bsize)
	w.Uint64(sfs.Blocks * bs) // tbytes
	w.Uint64(sfs.Bfree * bs)  // fbytes
	w.Uint64(sfs.Bavail * bs) // abytes: what a non-root user may still use
	w.Uint64(sfs.Files)       // tfiles
	w.Uint64(sfs.Ffree)       // ffiles
	w.Uint64(sfs.Ffree)       // afiles
	w.Uint32(0)               // invarsec: the numbers change at any time
}

// linkMax is the most hard links an inode may have, by statfs f_type
// (the kernel's EXT4_LINK_MAX, BTRFS_LINK_MAX, XFS_MAXLINK; FAT-style
// filesystems have no hard links). Others get glibc's default, 127.
func linkMax(fsType int64) uint32 {
	switch fsType {
	case unix.EXT4_SUPER_MAGIC:
		return 65000
	case unix.BTRFS_SUPER_MAGIC:
		return 65535
	case unix.XFS_SUPER_MAGIC:
		return 1<<31 - 1
	case unix.MSDOS_SUPER_MAGIC, exfatMagic:
		return 1
	}
	return 127
}

const exfatMagic = 0x2011bab0

func (s *Server) pathconf(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	sfs := s.fsQuery(r, w)
	if sfs == nil {
		return
	}
	fold := int64(sfs.Type) == unix.MSDOS_SUPER_MAGIC || int64(sfs.Type) == exfatMagic
	w.Uint32(linkMax(int64(sfs.Type)))
	w.Uint32(uint32(sfs.Namelen))
	w.Bool(true) // no_trunc: long names are refused, never cut
	w.Bool(true) // chown_restricted: only root gives files away
	w.Bool(fold) // case_insensitive
	w.Bool(true) // case_preserving
}

func (s *Server) fsinfo(c *rpcfront.Call, r *xdr.Reader, w *xdr.Writer) {
	if s.fsQuery(r, w) == nil {
		return
	}
	w.Uint32(maxIO)    // rtmax
	w.Uint32(maxIO)    // rtpref
	w.Uint32(4096)     // rtmult
	w.Uint32(maxIO)    // wtmax
	w.Uint32(maxIO)    // wtpref
	w.Uint32(4096)     // wtmult
	w.Uint32(64 << 10) // dtpref
	w.Uint64(1<<63 - 1)
	w.Uint32(0) // time_delta: 1 ns
	w.Uint32(1)
	props := uint32(0x1 | 0x2 | 0x8) // LINK, SYMLINK, HOMOGENEOUS
	if !s.opts.ReadOnly {
		props |= 0x10 // CANSETTIME
	}
	w.Uint32(props)
}
