package nfsmount

import "strings"

// FilesystemsListNFS reports whether a /proc/filesystems text registers nfs
// (lines look like "nodev\tnfs").
func FilesystemsListNFS(procFilesystems string) bool {
	for _, line := range strings.Split(procFilesystems, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "nfs" {
			return true
		}
	}
	return false
}
