#!/bin/sh
# a comment about -kernel is fine
qemu-system-x86_64 -kernel vmlinuz -initrd initrd
