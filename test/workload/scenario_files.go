//go:build linux || darwin

package workload

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// model tracks what a file must contain while a scenario changes it step by step.
type model struct {
	e    *env
	path string
	want []byte
}

// check runs the hook and verifies the file against the model, naming the step that preceded it.
func (m *model) check(step string) error {
	m.e.hook(StageWritten, m.path)
	st, err := os.Stat(m.path)
	if err != nil {
		return fmt.Errorf("after %s: %w", step, err)
	}
	if st.Size() != int64(len(m.want)) {
		return fmt.Errorf("after %s: size %d, want %d", step, st.Size(), len(m.want))
	}
	if err := verifyFile(m.path, m.want); err != nil {
		return fmt.Errorf("after %s: %w", step, err)
	}
	return nil
}

func (m *model) writeAt(off int, data []byte) {
	if end := off + len(data); end > len(m.want) {
		m.want = append(m.want, make([]byte, end-len(m.want))...)
	}
	copy(m.want[off:], data)
}

func (m *model) truncate(n int) {
	if n <= len(m.want) {
		m.want = m.want[:n]
		return
	}
	m.want = append(m.want, make([]byte, n-len(m.want))...)
}

func runFiles(e *env) error {
	m := &model{e: e, path: e.path("data")}

	f, err := os.OpenFile(m.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close after create: %w", err)
	}
	if err := m.check("create"); err != nil {
		return err
	}
	_, err = os.OpenFile(m.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err := expectErrno("O_EXCL create of an existing file", err, unix.EEXIST); err != nil {
		return err
	}

	// Sizes that straddle page and NFS wsize boundaries.
	first := randomBytes(e.rng, 3*4096+123)
	if err := writeFile(m.path, first, 0o644); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	m.want = append([]byte(nil), first...)
	if err := m.check("first write"); err != nil {
		return err
	}

	// Overwrite ranges in place through one fd, including one across a 4 KiB boundary.
	f, err = os.OpenFile(m.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open for overwrite: %w", err)
	}
	for _, off := range []int{0, 4000, 8191, len(m.want) - 7} {
		patch := randomBytes(e.rng, 200)
		if _, err := f.WriteAt(patch, int64(off)); err != nil {
			f.Close()
			return fmt.Errorf("pwrite at %d: %w", off, err)
		}
		m.writeAt(off, patch)
	}
	// Reading through the same fd must see the writes.
	got := make([]byte, len(m.want))
	if _, err := f.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return fmt.Errorf("read back through the writing fd: %w", err)
	}
	if d := mismatch(m.want, got, 0); d != "" {
		f.Close()
		return fmt.Errorf("read back through the writing fd: %s", d)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close after overwrite: %w", err)
	}
	if err := m.check("overwrite"); err != nil {
		return err
	}

	// Append with O_APPEND: writes land at the end whatever the offset.
	f, err = os.OpenFile(m.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open for append: %w", err)
	}
	for _, n := range []int{1, 4096, 70000} {
		chunk := randomBytes(e.rng, n)
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return fmt.Errorf("append %d bytes: %w", n, err)
		}
		m.want = append(m.want, chunk...)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close after append: %w", err)
	}
	if err := m.check("append"); err != nil {
		return err
	}

	// Truncate: grow (tail reads as zeros), shrink to an unaligned size, by path and by fd.
	grow := len(m.want) + 100000
	if err := os.Truncate(m.path, int64(grow)); err != nil {
		return fmt.Errorf("truncate grow by path: %w", err)
	}
	m.truncate(grow)
	if err := m.check("truncate grow"); err != nil {
		return err
	}
	if err := os.Truncate(m.path, 5001); err != nil {
		return fmt.Errorf("truncate shrink by path: %w", err)
	}
	m.truncate(5001)
	if err := m.check("truncate shrink"); err != nil {
		return err
	}
	f, err = os.OpenFile(m.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open for ftruncate: %w", err)
	}
	if err := f.Truncate(9000); err != nil {
		f.Close()
		return fmt.Errorf("ftruncate grow: %w", err)
	}
	m.truncate(9000)
	// Writing past EOF after a shrink: the gap must read as zeros, not as the old data.
	if err := f.Truncate(100); err != nil {
		f.Close()
		return fmt.Errorf("ftruncate shrink: %w", err)
	}
	m.truncate(100)
	tail := []byte("after the hole")
	if _, err := f.WriteAt(tail, 6000); err != nil {
		f.Close()
		return fmt.Errorf("pwrite past EOF: %w", err)
	}
	m.writeAt(6000, tail)
	if err := f.Close(); err != nil {
		return fmt.Errorf("close after ftruncate: %w", err)
	}
	if err := m.check("ftruncate and write past EOF"); err != nil {
		return err
	}

	// A read at EOF returns EOF, not stale bytes.
	f, err = os.Open(m.path)
	if err != nil {
		return err
	}
	n, err := f.ReadAt(make([]byte, 10), int64(len(m.want)))
	f.Close()
	if n != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("read at EOF: got %d bytes, err %v; want 0, EOF", n, err)
	}

	// O_TRUNC empties the file; then a 1 MiB+ file of random content written in one go.
	f, err = os.OpenFile(m.path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("open O_TRUNC: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	m.want = nil
	if err := m.check("O_TRUNC"); err != nil {
		return err
	}
	big := randomBytes(e.rng, 1<<20+4097)
	if err := writeFile(m.path, big, 0o644); err != nil {
		return err
	}
	m.want = big
	if err := m.check("1 MiB write"); err != nil {
		return err
	}
	return os.Remove(m.path)
}

func runRename(e *env) error {
	d1, d2 := e.path("d1"), e.path("d2")
	for _, d := range []string{d1, d2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	content := map[string][]byte{}
	mk := func(path string) error {
		b := randomBytes(e.rng, 1000+e.rng.IntN(5000))
		content[path] = b
		return writeFile(path, b, 0o644)
	}
	moved := func(from, to string) error {
		if err := expectGone(from); err != nil {
			return fmt.Errorf("rename %s -> %s: %w", from, to, err)
		}
		e.hook(StageWritten, to)
		if err := verifyFile(to, content[from]); err != nil {
			return fmt.Errorf("rename %s -> %s: %w", from, to, err)
		}
		content[to] = content[from]
		delete(content, from)
		return nil
	}

	// Same directory.
	a, b := e.path("d1", "a"), e.path("d1", "b")
	if err := mk(a); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		return fmt.Errorf("rename file in a directory: %w", err)
	}
	if err := moved(a, b); err != nil {
		return err
	}
	// Across directories.
	c := e.path("d2", "c")
	if err := os.Rename(b, c); err != nil {
		return fmt.Errorf("rename file across directories: %w", err)
	}
	if err := moved(b, c); err != nil {
		return err
	}
	if err := expectListing(d1, nil, e.opts.NFS); err != nil {
		return err
	}
	if err := expectListing(d2, []string{"c"}, e.opts.NFS); err != nil {
		return err
	}

	// Over an existing file: the destination takes the source's inode and content.
	src, dst := e.path("d1", "src"), e.path("d2", "dst")
	if err := mk(src); err != nil {
		return err
	}
	if err := mk(dst); err != nil {
		return err
	}
	srcSt, err := lstat(src)
	if err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("rename over an existing file: %w", err)
	}
	if err := moved(src, dst); err != nil {
		return err
	}
	dstSt, err := lstat(dst)
	if err != nil {
		return err
	}
	if dstSt.Ino != srcSt.Ino {
		return fmt.Errorf("rename over an existing file: destination inode %d, want the source's %d", dstSt.Ino, srcSt.Ino)
	}
	if err := expectListing(d2, []string{"c", "dst"}, e.opts.NFS); err != nil {
		return err
	}

	// A write through an fd opened before the rename lands in the renamed file.
	f, err := os.OpenFile(c, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	c2 := e.path("d2", "c2")
	if err := os.Rename(c, c2); err != nil {
		f.Close()
		return fmt.Errorf("rename an open file: %w", err)
	}
	extra := []byte("written after rename")
	if _, err := f.Write(extra); err != nil {
		f.Close()
		return fmt.Errorf("write through an fd opened before rename: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close after rename: %w", err)
	}
	content[c] = append(content[c], extra...)
	if err := moved(c, c2); err != nil {
		return err
	}

	// Directories: rename with contents, within and across parents.
	tree := e.path("d1", "tree")
	if err := os.MkdirAll(e.path("d1", "tree", "sub"), 0o755); err != nil {
		return err
	}
	leaf := e.path("d1", "tree", "sub", "leaf")
	if err := mk(leaf); err != nil {
		return err
	}
	tree2 := e.path("d1", "tree2")
	if err := os.Rename(tree, tree2); err != nil {
		return fmt.Errorf("rename a directory: %w", err)
	}
	if err := expectGone(tree); err != nil {
		return err
	}
	leaf2 := e.path("d1", "tree2", "sub", "leaf")
	if err := moved(leaf, leaf2); err != nil {
		return err
	}
	tree3 := e.path("d2", "tree3")
	if err := os.Rename(tree2, tree3); err != nil {
		return fmt.Errorf("rename a directory across directories: %w", err)
	}
	leaf3 := e.path("d2", "tree3", "sub", "leaf")
	if err := moved(leaf2, leaf3); err != nil {
		return err
	}
	if err := expectListing(d1, nil, e.opts.NFS); err != nil {
		return err
	}
	if err := expectListing(d2, []string{"c2", "dst", "tree3"}, e.opts.NFS); err != nil {
		return err
	}

	// Rename a directory, then create inside it at once (stale handles after rename are a known go-nfs
	// failure mode).
	if err := os.Rename(e.path("d2", "tree3"), e.path("d2", "tree4")); err != nil {
		return err
	}
	fresh := e.path("d2", "tree4", "fresh")
	if err := mk(fresh); err != nil {
		return fmt.Errorf("create a file in a just-renamed directory: %w", err)
	}
	e.hook(StageWritten, fresh)
	if err := verifyFile(fresh, content[fresh]); err != nil {
		return err
	}
	if err := os.Mkdir(e.path("d2", "tree4", "newdir"), 0o755); err != nil {
		return fmt.Errorf("mkdir in a just-renamed directory: %w", err)
	}
	if err := expectListing(e.path("d2", "tree4"), []string{"sub", "fresh", "newdir"}, e.opts.NFS); err != nil {
		return err
	}
	// Rename a directory over an empty one (allowed), and over a non-empty one (refused). Go's os.Rename
	// refuses any existing directory as the destination, so call rename(2) directly.
	if err := os.Mkdir(e.path("d1", "empty"), 0o755); err != nil {
		return err
	}
	if err := unix.Rename(e.path("d2", "tree4", "newdir"), e.path("d1", "empty")); err != nil {
		return fmt.Errorf("rename a directory over an empty directory: %w", err)
	}
	if err := expectGone(e.path("d2", "tree4", "newdir")); err != nil {
		return err
	}
	err = unix.Rename(e.path("d1", "empty"), e.path("d2", "tree4"))
	if err := expectErrno("rename a directory over a non-empty directory", err, unix.ENOTEMPTY, unix.EEXIST); err != nil {
		return err
	}
	leaf4 := e.path("d2", "tree4", "sub", "leaf")
	return verifyFile(leaf4, content[leaf3])
}

func runRemove(e *env) error {
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		if err := writeFile(e.path(n), []byte(n), 0o644); err != nil {
			return err
		}
	}
	for _, n := range []string{"x", "y"} {
		if err := os.Mkdir(e.path(n), 0o755); err != nil {
			return err
		}
	}
	if err := writeFile(e.path("y", "inner"), []byte("inner"), 0o644); err != nil {
		return err
	}
	if err := expectListing(e.dir, []string{"a", "b", "c", "d", "x", "y"}, e.opts.NFS); err != nil {
		return err
	}
	if err := unix.Unlink(e.path("b")); err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	if err := expectGone(e.path("b")); err != nil {
		return err
	}
	if err := unix.Rmdir(e.path("x")); err != nil {
		return fmt.Errorf("rmdir: %w", err)
	}
	if err := expectGone(e.path("x")); err != nil {
		return err
	}
	err := unix.Rmdir(e.path("y"))
	if err := expectErrno("rmdir of a non-empty directory", err, unix.ENOTEMPTY, unix.EEXIST); err != nil {
		return err
	}
	err = unix.Unlink(e.path("y"))
	if err := expectErrno("unlink of a directory", err, unix.EISDIR, unix.EPERM); err != nil {
		return err
	}
	err = unix.Rmdir(e.path("a"))
	if err := expectErrno("rmdir of a file", err, unix.ENOTDIR); err != nil {
		return err
	}
	err = unix.Unlink(e.path("b"))
	if err := expectErrno("unlink of a removed name", err, unix.ENOENT); err != nil {
		return err
	}
	if err := expectListing(e.dir, []string{"a", "c", "d", "y"}, e.opts.NFS); err != nil {
		return err
	}

	// Unlink while open: the open fd still reads the data; the name is gone.
	f, err := os.Open(e.path("c"))
	if err != nil {
		return err
	}
	if err := unix.Unlink(e.path("c")); err != nil {
		f.Close()
		return fmt.Errorf("unlink an open file: %w", err)
	}
	buf := make([]byte, 8)
	n, err := f.Read(buf)
	f.Close()
	if err != nil || string(buf[:n]) != "c" {
		return fmt.Errorf("read through an fd whose name was unlinked: got %q, %v; want \"c\"", buf[:n], err)
	}
	if err := expectGone(e.path("c")); err != nil {
		return err
	}
	if e.opts.NFS {
		e.note("NFS: .nfsXXXX silly-rename entries are not counted in listings")
	}

	for _, p := range []string{e.path("a"), e.path("d"), e.path("y", "inner")} {
		if err := unix.Unlink(p); err != nil {
			return fmt.Errorf("unlink %s: %w", p, err)
		}
	}
	if err := unix.Rmdir(e.path("y")); err != nil {
		return fmt.Errorf("rmdir after emptying: %w", err)
	}
	return expectListing(e.dir, nil, e.opts.NFS)
}
