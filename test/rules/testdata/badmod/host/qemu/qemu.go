// Package qemu may pass -kernel: it is the one renderer.
package qemu

var Args = []string{"-kernel", "vmlinuz"}
