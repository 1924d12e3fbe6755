//go:build !linux && !darwin

package supervisor

import "github.com/luksmount/luksmount/host/blockdev"

func canMountNFS() (bool, string) { return false, "luksmount cannot mount NFS on this system" }

func checkNotMounted(*blockdev.Device) error { return nil }

// siblingWarning: only macOS ejects a whole disk for one of its volumes.
func siblingWarning(*blockdev.Device) string { return "" }
