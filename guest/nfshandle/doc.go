// Package nfshandle makes persistent NFS file handles from Linux kernel file
// handles (name_to_handle_at/open_by_handle_at). A handle stays valid across
// renames of the file or its ancestors and across server or VM restarts on
// the same filesystem, resolves in constant time, and never resolves to
// anything outside the served root. It needs CAP_DAC_READ_SEARCH (root).
//
// # Path handles
//
// Some filesystems give no usable kernel handles: exFAT exports none, FAT's
// name the in-memory inode and go stale once it leaves the cache (its
// nfs=nostale_ro mode is read-only), and FUSE's (ntfs-3g) name per-mount node
// ids. On those (found by statfs f_type) a handle is a 64-bit id the table
// gives each path, kept as a tree of (parent id, name), so:
//
//   - Renames through the server (Renamed) keep the handles of the file and
//     of everything under it; REMOVE, RMDIR and rename-over (Removed) retire
//     the id, so a new file at that name never answers to an old handle.
//   - The table of a mount is kept across NFS server restarts in one agent.
//     A new id is a hash of the path (case-folded on FAT and exFAT), so after
//     a VM restart an old handle resolves again (one tree walk, at most every
//     10 s) if its file still has the path it had when first seen; one
//     renamed or replaced in the last run is stale instead: the client looks
//     it up again by name.
//   - A rename or removal made on the drive behind the server's back makes
//     the handle stale (kernel handles would follow it).
//   - A file has one handle per path: the server refuses LINK (NOTSUPP), and
//     a file already hard-linked on an NTFS drive has one handle per name.
//   - fileids are the ids (FileID, FileIDAt): FAT and exFAT number inodes
//     afresh each time one is read in, and a client that sees a fileid change
//     for a handle fails the call. A stat of a file never handed out (which
//     the server does not do) falls back to its inode number.
//   - Paths are opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so
//     a handle cannot leave the root even if the tree changed under it.
//   - Memory: about 100 bytes per file the client has seen, until unmount.
package nfshandle

import "errors"

// ErrStale means the handle is malformed, from another filesystem, names a
// deleted file or something outside the root.
var ErrStale = errors.New("stale file handle")

// MaxSize is the NFSv3 file handle limit.
const MaxSize = 64
