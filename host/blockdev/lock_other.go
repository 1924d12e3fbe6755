//go:build !unix

package blockdev

import "os"

// lock is a no-op where flock does not exist; luksmount does not run there.
func lock(*os.File, bool) error { return nil }
