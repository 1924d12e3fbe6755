// Package nfsserver serves a mounted filesystem over NFSv3 and MOUNT v3 from
// inside the guest: all 22 NFSv3 procedures and all six MOUNT procedures are
// answered here, each as a few *at syscalls on file descriptors, never by
// joining path strings.
//
//   - File handles are the kernel's own (name_to_handle_at, guest/nfshandle),
//     so they survive renames and server restarts.
//   - Replies mean what NFSv3 promises: FILE_SYNC and COMMIT are fsyncs, the
//     filesystem is mounted with dirsync so namespace changes are on disk
//     before their reply, and a SETATTR that changes anything is fsynced
//     before its reply.
//   - Owners are mapped between the drive and the mounting user, and only
//     that user and root may call (AUTH_SYS uid).
//   - guest/rpcfront runs the calls of a connection in parallel and bounds
//     what clients can make the server hold: 16 connections of 4 MiB each
//     (records up to 1 MiB + 64 KiB, READ and READDIR replies reserved before
//     they run), 30 s for a begun record and for a reply to be taken; about
//     65 MiB in all (TestMisbehavingClients measures it).
//
// It grew out of github.com/willscott/go-nfs, which stays the stock baseline
// of the wire tests and `make bench`. Its exported protocol types are not
// used: they come with go-nfs's server and go-billy (which the agent must
// not link) and its decoder is reflection-based with no length limits, while
// every argument here is decoded by hand through guest/xdr with RFC 1813's
// limits, so the status and procedure names below are our own.
package nfsserver

// Options configures a Server.
type Options struct {
	Root     string // path of the mounted filesystem in the guest, e.g. /mnt/data
	ReadOnly bool
	// ClientUID/GID: the host user who mounted (uid 501 on a Mac). Files owned
	// by the drive owner appear owned by this user, and only this uid and root
	// may use the server.
	ClientUID, ClientGID uint32
	// DriveUID/GID: ids given to files created over NFS; OwnerFromRoot means
	// use the owner of Root instead.
	DriveUID, DriveGID uint32
	OwnerFromRoot      bool
	PassThroughIDs     bool                             // --owner none: no id mapping at all
	Logf               func(format string, args ...any) // user-facing log lines (may be nil)
	// OnUnmount is told when a client sends MOUNT UMNT/UMNTALL (may be nil).
	OnUnmount func(client string)
	// FixedAttrs: the filesystem keeps no modes or owners (FAT, exFAT, NTFS through ntfs-3g,
	// which would ignore a change silently): SETATTR that changes them is NFS3ERR_PERM, and
	// CREATE and MKDIR leave the mode the filesystem gives, as a local mount does.
	FixedAttrs bool
	// SyncDirs: the filesystem ignores dirsync (btrfs, NTFS on FUSE); each directory change is
	// fsynced before the reply.
	SyncDirs bool
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}
