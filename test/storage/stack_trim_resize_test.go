//go:build vmtest

package storage

import (
	"bytes"
	"strings"
	"testing"
)

// TestStackTrimAndResize is seed 003's user: a sparse LUKS image mounted with --discard shrinks
// on `luksmount trim` after a delete, then grows with `luksmount resize` while mounted, and every
// byte written before reads back after a restart. One session for trim, resize and the bad
// inputs; a second (without --discard) for the read-back and the "mount with --discard" error.
func TestStackTrimAndResize(t *testing.T) {
	e := newStEnv(t)
	img := e.format("sparse.img", "48M", "--label", "Seed003")

	r := e.must(4, "", "trim", img)
	e.oneLine(r, "luksmount --discard "+img)

	e.must(0, stPass+"\n", "--no-mount", "--discard", "--accel", "tcg", img)
	fs := e.nfs(img)
	keep := noise(3<<20, 1)
	if err := fs.WriteFile("keep.bin", keep); err != nil {
		t.Fatal(err)
	}

	// TRIM: 20 MiB written, deleted, trimmed: the image's allocation falls by >= 80% of it.
	const deleted = 20 << 20
	if err := fs.WriteFile("big.bin", noise(deleted, 2)); err != nil {
		t.Fatal(err)
	}
	withBig := allocated(t, img)
	if err := fs.Remove("big.bin"); err != nil {
		t.Fatal(err)
	}
	r = e.must(0, "", "trim", img)
	afterTrim := allocated(t, img)
	freed := withBig - afterTrim
	t.Logf("st_blocks: %d MiB with big.bin, %d MiB after delete+trim: %d MiB freed of %d MiB deleted (%s)",
		withBig>>20, afterTrim>>20, freed>>20, deleted>>20, strings.TrimSpace(r.stdout))
	if freed < deleted*8/10 {
		t.Fatalf("trim freed %d bytes of the image; want >= 80%% of the %d deleted", freed, deleted)
	}
	if !strings.Contains(r.stdout, "trimmed") {
		t.Fatalf("trim did not say what it did: %s", r)
	}

	// Resize: refused shrink and no-op leave the image alone; growing makes room for a file
	// that could not fit before (32 MiB of ext4 minus what is used).
	before := fileSize(t, img)
	r = e.must(1, "", "resize", "--size", "40M", img)
	e.oneLine(r, "refusing to shrink")
	r = e.must(1, "", "resize", "--size", "48M", img)
	e.oneLine(r, "already")
	if fileSize(t, img) != before {
		t.Fatalf("a refused resize changed the image size from %d to %d", before, fileSize(t, img))
	}
	tooBig := noise(40<<20, 3)
	if err := fs.WriteFile("toobig.bin", tooBig); err == nil {
		t.Fatal("a 40 MiB file fit in 32 MiB before the resize: the test proves nothing")
	}
	fs.Remove("toobig.bin")
	r = e.must(0, "", "resize", "--size", "128M", img)
	if got := fileSize(t, img); got != 128<<20 {
		t.Fatalf("image is %d bytes after resize --size 128M", got)
	}
	if !strings.Contains(r.stdout, "ext4 now holds") {
		t.Fatalf("resize did not report the filesystem size: %s", r)
	}
	if err := fs.WriteFile("toobig.bin", tooBig); err != nil {
		t.Fatalf("a 40 MiB file does not fit after growing to 128M: %v", err)
	}
	e.must(0, "", "stop", img)

	// Everything reads back after a restart; this session has no --discard, so trim says how.
	e.must(0, stPass+"\n", "--no-mount", "--accel", "tcg", img)
	fs = e.nfs(img)
	for name, want := range map[string][]byte{"keep.bin": keep, "toobig.bin": tooBig} {
		got, err := fs.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after restart: %d bytes, sha %s, %v; want %d bytes, sha %s", name, len(got), shaHex(got), err, len(want), shaHex(want))
		}
	}
	r = e.must(1, "", "trim", img)
	e.oneLine(r, "mount again with `luksmount --discard")
	e.must(0, "", "stop", img)
	e.must(0, stPass+"\n", "check", "--accel", "tcg", img)
}
