//go:build linux || darwin

package workload

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func runSparse(e *env) error {
	p := e.path("sparse")
	off := e.opts.SparseOffset
	tail := []byte("luksmount sparse tail\n")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	// A write straddling 2^32 catches 32-bit offset truncation anywhere on the path.
	const boundary = int64(1<<32) - 2
	mid := []byte{0xde, 0xad, 0xbe, 0xef}
	useBoundary := off > boundary+int64(len(mid))+(64<<10)
	if useBoundary {
		if _, err := f.WriteAt(mid, boundary); err != nil {
			f.Close()
			return fmt.Errorf("pwrite across 4 GiB: %w", err)
		}
	} else {
		e.note("sparse offset %d is below 4 GiB: 4 GiB boundary sub-check skipped", off)
	}
	if _, err := f.WriteAt(tail, off); err != nil {
		f.Close()
		return fmt.Errorf("pwrite at %d: %w", off, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	e.hook(StageWritten, p)
	size := off + int64(len(tail))
	st, err := lstat(p)
	if err != nil {
		return err
	}
	if st.Size != size {
		return fmt.Errorf("size %d, want %d", st.Size, size)
	}
	if err := verifyAt(p, off, tail); err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	holes := []int64{0, off - int64(len(zeros)), 1 << 20, (off / 2) &^ 4095}
	if useBoundary {
		if err := verifyAt(p, boundary, mid); err != nil {
			return err
		}
		holes = append(holes, boundary-int64(len(zeros)), boundary+int64(len(mid)))
	}
	for _, h := range holes {
		if useBoundary && h < boundary+int64(len(mid)) && h+int64(len(zeros)) > boundary {
			continue // the (off/2) probe may hit the data written at the boundary
		}
		if err := verifyAt(p, h, zeros); err != nil {
			return fmt.Errorf("hole: %w", err)
		}
	}
	// A read running past EOF returns just the tail.
	rf, err := os.Open(p)
	if err != nil {
		return err
	}
	buf := make([]byte, len(tail)+4096)
	n, err := rf.ReadAt(buf, off)
	rf.Close()
	if n != len(tail) || !errors.Is(err, io.EOF) {
		return fmt.Errorf("read past EOF at %d: got %d bytes, err %v; want %d bytes and EOF", off, n, err, len(tail))
	}
	used := st.Blocks * 512
	e.note("size %d, %d bytes allocated", st.Size, used)
	if used > 1<<20 {
		if !e.opts.NFS {
			return fmt.Errorf("%d bytes allocated for a sparse file with %d bytes of data: holes were filled", used, len(tail)+len(mid))
		}
		e.note("NFS: allocated size not checked (the server may report used = size)")
	}

	// Shrink, then grow again: the old data must not come back.
	if err := os.Truncate(p, 1<<20); err != nil {
		return fmt.Errorf("truncate shrink: %w", err)
	}
	if err := os.Truncate(p, size); err != nil {
		return fmt.Errorf("truncate grow: %w", err)
	}
	e.hook(StageWritten, p)
	if err := verifyAt(p, off, make([]byte, len(tail))); err != nil {
		return fmt.Errorf("after shrink and grow, old data came back: %w", err)
	}
	if useBoundary {
		if err := verifyAt(p, boundary, make([]byte, len(mid))); err != nil {
			return fmt.Errorf("after shrink and grow, old data came back: %w", err)
		}
	}
	return os.Remove(p)
}

func runManyFiles(e *env) error {
	n := e.opts.Files
	names := make([]string, n)
	start := time.Now()
	for i := range names {
		if i%1000 == 0 && e.ctx.Err() != nil {
			return e.ctx.Err()
		}
		names[i] = fmt.Sprintf("file-%06d", i)
		if err := writeFile(e.path(names[i]), []byte(names[i]), 0o644); err != nil {
			return fmt.Errorf("create file %d of %d: %w", i+1, n, err)
		}
	}
	created := time.Since(start)
	e.hook(StagePopulated, e.dir)
	start = time.Now()
	if err := expectListing(e.dir, names, e.opts.NFS); err != nil {
		return err
	}
	listed := time.Since(start)
	// A sample of files still hold their own names.
	for range min(100, n) {
		name := names[e.rng.IntN(n)]
		if err := verifyFile(e.path(name), []byte(name)); err != nil {
			return err
		}
	}
	start = time.Now()
	for i, name := range names {
		if err := os.Remove(e.path(name)); err != nil {
			return fmt.Errorf("remove file %d of %d: %w", i+1, n, err)
		}
	}
	removed := time.Since(start)
	if err := expectListing(e.dir, nil, e.opts.NFS); err != nil {
		return fmt.Errorf("after removing all files: %w", err)
	}
	e.note("%d files: created in %v, listed in %v, removed in %v", n,
		created.Round(time.Millisecond), listed.Round(time.Millisecond), removed.Round(time.Millisecond))
	return nil
}

func runUnicodeNames(e *env) error {
	nfc, nfd := "caf\u00e9", "cafe\u0301"
	names := []string{
		nfc, nfd,
		"📁 backup 🔐",
		"family-👨‍👩‍👧‍👦",
		"日本語のファイル名",
		"Ελληνικά",
		"with space",
		" leading space",
		"trailing space ",
		"new\nline",
		"back\\slash",
		"tab\tchar",
		"quote\"s and 'apostrophes'",
		"colon:semi;star*question?",
		"-leading-dash",
		"...",
		".hidden",
		"latin1-caf\xe9",
		"ctrl-\x01\x1f\x7f",
		strings.Repeat("a", 255),
		strings.Repeat("€", 85),         // 255 bytes of 3-byte characters
		strings.Repeat("📦", 63) + "xyz", // 255 bytes ending in ASCII
	}
	for _, n := range names {
		if err := writeFile(e.path(n), []byte(n), 0o644); err != nil {
			return fmt.Errorf("create %q (%d bytes): %w", n, len(n), err)
		}
	}
	a, err := lstat(e.path(nfc))
	if err != nil {
		return err
	}
	b, err := lstat(e.path(nfd))
	if err != nil {
		return err
	}
	if a.Ino == b.Ino {
		return fmt.Errorf("NFC %q and NFD %q are the same file: names are being normalised", nfc, nfd)
	}
	e.hook(StagePopulated, e.dir)
	if err := expectListing(e.dir, names, e.opts.NFS); err != nil {
		return err
	}
	for _, n := range names {
		if err := verifyFile(e.path(n), []byte(n)); err != nil {
			return err
		}
	}
	for _, n := range []string{strings.Repeat("a", 256), strings.Repeat("€", 85) + "b"} {
		err := writeFile(e.path(n), nil, 0o644)
		if err := expectErrno("create with a 256-byte name", err, unix.ENAMETOOLONG); err != nil {
			return err
		}
		err = os.Mkdir(e.path(n), 0o755)
		if err := expectErrno("mkdir with a 256-byte name", err, unix.ENAMETOOLONG); err != nil {
			return err
		}
	}
	// Rename between the two normal forms keeps them distinct.
	if err := os.Rename(e.path(nfd), e.path(nfd+"-renamed")); err != nil {
		return err
	}
	if err := verifyFile(e.path(nfc), []byte(nfc)); err != nil {
		return fmt.Errorf("renaming the NFD name touched the NFC one: %w", err)
	}
	if err := verifyFile(e.path(nfd+"-renamed"), []byte(nfd)); err != nil {
		return err
	}
	names[1] = nfd + "-renamed"
	for _, n := range names {
		if err := os.Remove(e.path(n)); err != nil {
			return fmt.Errorf("remove %q: %w", n, err)
		}
	}
	return expectListing(e.dir, nil, e.opts.NFS)
}
