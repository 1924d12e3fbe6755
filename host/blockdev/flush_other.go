//go:build !linux && !darwin

package blockdev

// Flush makes what was written to the target durable; elsewhere fsync is all there is.
func (d *Device) Flush() error { return d.File.Sync() }
