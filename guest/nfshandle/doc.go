// Package nfshandle makes persistent NFS file handles from Linux kernel file
// handles (name_to_handle_at/open_by_handle_at). A handle stays valid across
// renames of the file or its ancestors and across server or VM restarts on
// the same filesystem, resolves in constant time, and never resolves to
// anything outside the served root. It needs CAP_DAC_READ_SEARCH (root).
package nfshandle

import "errors"

// ErrStale means the handle is malformed, from another filesystem, names a
// deleted file or something outside the root.
var ErrStale = errors.New("stale file handle")

// MaxSize is the NFSv3 file handle limit.
const MaxSize = 64
