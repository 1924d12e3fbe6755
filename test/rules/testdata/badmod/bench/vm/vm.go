// Package vm writes a QEMU command line by hand (broken rule: -kernel only in host/qemu).
package vm

var Args = []string{"qemu-system-x86_64", "-kernel", "vmlinuz"}

const Line = "qemu-system-x86_64 -m 512 -kernel vmlinuz"
