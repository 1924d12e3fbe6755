//go:build linux || darwin

package workload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// randomBytes returns n bytes from rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// writeFile creates or truncates path and writes data, reporting close errors too (NFS reports
// write-back failures at close).
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", path, err)
	}
	return nil
}

// verifyFile opens path afresh and checks its whole content is want.
func verifyFile(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read back %s: %w", path, err)
	}
	if d := mismatch(want, got, 0); d != "" {
		return fmt.Errorf("content of %s: %s", path, d)
	}
	return nil
}

// verifyAt reads len(want) bytes at off of path and compares them.
func verifyAt(path string, off int64, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	got := make([]byte, len(want))
	n, err := f.ReadAt(got, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read %s at %d: %w", path, off, err)
	}
	if d := mismatch(want, got[:n], off); d != "" {
		return fmt.Errorf("content of %s: %s", path, d)
	}
	return nil
}

// mismatch describes how got differs from want (both starting at file offset base), or returns "".
func mismatch(want, got []byte, base int64) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	var sb strings.Builder
	if len(want) != len(got) {
		fmt.Fprintf(&sb, "length %d, want %d; ", len(got), len(want))
	}
	fmt.Fprintf(&sb, "first difference at offset %d: want [% x], got [% x]", base+int64(i), window(want, i), window(got, i))
	return sb.String()
}

func window(b []byte, i int) []byte {
	if i >= len(b) {
		return nil
	}
	return b[i:min(i+16, len(b))]
}

// listNames returns the names in dir (without . and ..), read in small batches so that a listing needs
// several getdents calls (and several READDIR(PLUS) pages over NFS).
func listNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open directory %s: %w", dir, err)
	}
	defer f.Close()
	var names []string
	for {
		batch, err := f.Readdirnames(256)
		names = append(names, batch...)
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return names, fmt.Errorf("cannot list %s: %w", dir, err)
		}
	}
}

// expectListing checks that dir holds exactly the names in want: nothing missing, nothing extra, no
// duplicates. With ignoreSilly, NFS silly-rename leftovers (.nfsXXXX) are not counted as extra.
func expectListing(dir string, want []string, ignoreSilly bool) error {
	got, err := listNames(dir)
	if err != nil {
		return err
	}
	if d := compareNames(got, want, ignoreSilly); d != "" {
		return fmt.Errorf("listing of %s: %s", dir, d)
	}
	return nil
}

// compareNames describes how a listing differs from the wanted names, or returns "".
func compareNames(got, want []string, ignoreSilly bool) string {
	seen := make(map[string]int, len(got))
	var dups []string
	for _, n := range got {
		seen[n]++
		if seen[n] == 2 {
			dups = append(dups, n)
		}
	}
	wantSet := make(map[string]bool, len(want))
	var missing []string
	for _, n := range want {
		wantSet[n] = true
		if seen[n] == 0 {
			missing = append(missing, n)
		}
	}
	var extra []string
	for n := range seen {
		if !wantSet[n] && !(ignoreSilly && strings.HasPrefix(n, ".nfs")) {
			extra = append(extra, n)
		}
	}
	if len(dups)+len(missing)+len(extra) == 0 {
		return ""
	}
	slices.Sort(extra)
	return fmt.Sprintf("%d entries, want %d; missing %s; extra %s; duplicated %s",
		len(got), len(want), someNames(missing), someNames(extra), someNames(dups))
}

func someNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	const show = 5
	q := make([]string, 0, show)
	for _, n := range names[:min(show, len(names))] {
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := fmt.Sprintf("%d (%s", len(names), strings.Join(q, ", "))
	if len(names) > show {
		s += ", ..."
	}
	return s + ")"
}

// lstat returns the raw stat of path without following a final symlink.
func lstat(path string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, fmt.Errorf("cannot lstat %s: %w", path, err)
	}
	return &st, nil
}

// expectGone checks that path no longer exists (lstat gives ENOENT).
func expectGone(path string) error {
	_, err := os.Lstat(path)
	if err == nil {
		return fmt.Errorf("%s still exists", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lstat %s: want ENOENT, got %w", path, err)
	}
	return nil
}

// expectErrno checks that err is one of the given errnos.
func expectErrno(what string, err error, want ...unix.Errno) error {
	if err == nil {
		return fmt.Errorf("%s succeeded, want %v", what, want)
	}
	for _, w := range want {
		if errors.Is(err, w) {
			return nil
		}
	}
	return fmt.Errorf("%s: want %v, got %w", what, want, err)
}

// fileFacts is what must not change on a file that an operation should not touch.
type fileFacts struct {
	ino, size   uint64
	mode        uint32
	mtimeNS     int64
	uid, gid    uint32
	nlink       uint64
	content     []byte
	contentRead bool
}

func factsOf(path string) (fileFacts, error) {
	st, err := lstat(path)
	if err != nil {
		return fileFacts{}, err
	}
	ff := fileFacts{ino: st.Ino, size: uint64(st.Size), mode: uint32(st.Mode), mtimeNS: st.Mtim.Nano(),
		uid: st.Uid, gid: st.Gid, nlink: uint64(st.Nlink)}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		if b, err := os.ReadFile(path); err == nil {
			ff.content, ff.contentRead = b, true
		}
	}
	return ff, nil
}

func (a fileFacts) diff(b fileFacts) string {
	var d []string
	if a.ino != b.ino {
		d = append(d, fmt.Sprintf("inode %d -> %d", a.ino, b.ino))
	}
	if a.size != b.size {
		d = append(d, fmt.Sprintf("size %d -> %d", a.size, b.size))
	}
	if a.mode != b.mode {
		d = append(d, fmt.Sprintf("mode %o -> %o", a.mode, b.mode))
	}
	if a.mtimeNS != b.mtimeNS {
		d = append(d, "mtime changed")
	}
	if a.uid != b.uid || a.gid != b.gid {
		d = append(d, fmt.Sprintf("owner %d:%d -> %d:%d", a.uid, a.gid, b.uid, b.gid))
	}
	if a.nlink != b.nlink {
		d = append(d, fmt.Sprintf("nlink %d -> %d", a.nlink, b.nlink))
	}
	if a.contentRead && b.contentRead && !bytes.Equal(a.content, b.content) {
		d = append(d, "content changed")
	}
	return strings.Join(d, ", ")
}
