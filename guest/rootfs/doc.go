// Package rootfs is a go-billy filesystem confined to one directory tree. It
// resolves every path through os.Root, so symlinks, ".." and absolute link
// targets can never reach outside the tree, and it applies changes to the
// final path component with *at syscalls and no-follow flags, so removing,
// renaming, chowning or touching a symlink acts on the link itself.
package rootfs
