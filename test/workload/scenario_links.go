//go:build linux || darwin

package workload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type linkCase struct{ name, target string }

func runSymlinks(e *env) error {
	target := e.path("target")
	body := randomBytes(e.rng, 3000)
	if err := writeFile(target, body, 0o640); err != nil {
		return err
	}
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		return err
	}
	inner := e.path("sub", "inner")
	innerBody := []byte("inner file")
	if err := writeFile(inner, innerBody, 0o644); err != nil {
		return err
	}

	links := []linkCase{
		{"rel", "target"},
		{"rel-sub", "sub/inner"},
		{"rel-dir", "sub"},
		{"abs", target},
		{"dangling", "does-not-exist"},
		{"up", "../../../../../../../../.."},
		{"passwd", "/etc/passwd"},
		{"odd", "a//b/./c/../d/"},                    // stored verbatim, not cleaned
		{"long", strings.Repeat("x/", 499) + "y"},    // 999 bytes
		{"spaces", "name with spaces\nand\\newline"}, // bytes a shell would mangle
		{"nonutf8", "caf\xe9"},                       // Latin-1 bytes, not UTF-8
	}
	for _, l := range links {
		if err := os.Symlink(l.target, e.path(l.name)); err != nil {
			return fmt.Errorf("symlink %s -> %q: %w", l.name, l.target, err)
		}
	}
	if err := checkLinks(e, e.dir, links); err != nil {
		return err
	}
	want := []string{"target", "sub"}
	for _, l := range links {
		want = append(want, l.name)
	}
	if err := expectListing(e.dir, want, e.opts.NFS); err != nil {
		return err
	}

	// Following: links resolve to what they name.
	e.hook(StageWritten, target)
	for _, p := range []struct {
		path string
		want []byte
	}{{e.path("rel"), body}, {e.path("abs"), body}, {e.path("rel-sub"), innerBody}, {e.path("rel-dir", "inner"), innerBody}} {
		if err := verifyFile(p.path, p.want); err != nil {
			return fmt.Errorf("following a link: %w", err)
		}
	}
	_, err := os.Stat(e.path("dangling"))
	if err := expectErrno("stat through a dangling link", err, unix.ENOENT); err != nil {
		return err
	}
	// Writing through a link changes the target, and leaves the link a link.
	f, err := os.OpenFile(e.path("rel"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open through a link: %w", err)
	}
	if _, err := f.Write([]byte("via link")); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	body = append(body, "via link"...)
	e.hook(StageWritten, target)
	if err := verifyFile(target, body); err != nil {
		return fmt.Errorf("after writing through a link: %w", err)
	}
	if err := checkLinks(e, e.dir, links[:1]); err != nil {
		return err
	}

	// Outside sentinel: operations on links that point outside must not touch what they point at.
	var sentinelDir, sentinel string
	var sentinelBefore fileFacts
	if e.opts.Outside == "" {
		e.note("skipped sub-check outside-sentinel: no -outside directory given")
	} else {
		sentinelDir, err = os.MkdirTemp(e.opts.Outside, "luksmount-sentinel.")
		if err != nil {
			return fmt.Errorf("cannot create sentinel in -outside: %w", err)
		}
		sentinel = filepath.Join(sentinelDir, "sentinel")
		if err := writeFile(sentinel, []byte("must not change\n"), 0o600); err != nil {
			return err
		}
		if sentinelBefore, err = factsOf(sentinel); err != nil {
			return err
		}
		rel, err := filepath.Rel(e.dir, sentinel)
		if err != nil {
			return err
		}
		out := []linkCase{{"out-abs", sentinel}, {"out-rel", rel}, {"out-dir", sentinelDir}}
		for _, l := range out {
			if err := os.Symlink(l.target, e.path(l.name)); err != nil {
				return fmt.Errorf("symlink %s -> %q: %w", l.name, l.target, err)
			}
		}
		if err := checkLinks(e, e.dir, out); err != nil {
			return err
		}
		old := time.Date(2005, 6, 7, 8, 9, 10, 0, time.UTC)
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		for _, l := range out {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, e.path(l.name), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("lutimes %s: %w", l.name, err)
			}
			if os.Geteuid() == 0 {
				if err := os.Lchown(e.path(l.name), 4321, 4321); err != nil {
					return fmt.Errorf("lchown %s: %w", l.name, err)
				}
			}
		}
		if err := os.Rename(e.path("out-abs"), e.path("sub", "out-abs-moved")); err != nil {
			return fmt.Errorf("rename a link pointing outside: %w", err)
		}
		if err := checkLinks(e, e.path("sub"), []linkCase{{"out-abs-moved", sentinel}}); err != nil {
			return err
		}
		for _, p := range []string{e.path("out-rel"), e.path("out-dir"), e.path("sub", "out-abs-moved")} {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove a link pointing outside: %w", err)
			}
		}
		after, err := factsOf(sentinel)
		if err != nil {
			return fmt.Errorf("outside sentinel after link operations: %w", err)
		}
		if d := sentinelBefore.diff(after); d != "" {
			return fmt.Errorf("outside sentinel %s changed by operations on links: %s", sentinel, d)
		}
		if err := expectListing(sentinelDir, []string{"sentinel"}, false); err != nil {
			return fmt.Errorf("outside sentinel directory changed: %w", err)
		}
		ops := "lutimes/rename/remove"
		if os.Geteuid() == 0 {
			ops = "lutimes/lchown/rename/remove"
		}
		e.note("outside-sentinel: unchanged after %s of 3 links to %s", ops, sentinelDir)
	}

	// Rename and remove act on the link, never its target.
	targetBefore, err := factsOf(target)
	if err != nil {
		return err
	}
	innerBefore, err := factsOf(inner)
	if err != nil {
		return err
	}
	passwdBefore, passwdErr := factsOf("/etc/passwd")

	if err := os.Rename(e.path("abs"), e.path("abs-moved")); err != nil {
		return fmt.Errorf("rename a link: %w", err)
	}
	if err := os.Rename(e.path("rel-dir"), e.path("sub", "rel-dir-moved")); err != nil {
		return fmt.Errorf("rename a link to a directory: %w", err)
	}
	if err := os.Rename(e.path("up"), e.path("sub", "up-moved")); err != nil {
		return fmt.Errorf("rename a link across directories: %w", err)
	}
	if err := expectGone(e.path("abs")); err != nil {
		return err
	}
	if err := checkLinks(e, e.dir, []linkCase{{"abs-moved", target}}); err != nil {
		return err
	}
	if err := checkLinks(e, e.path("sub"), []linkCase{{"rel-dir-moved", "sub"}, {"up-moved", links[5].target}}); err != nil {
		return err
	}
	for _, n := range []string{"rel", "abs-moved", "dangling", "passwd", "rel-sub", "odd", "long", "spaces", "nonutf8"} {
		if err := os.Remove(e.path(n)); err != nil {
			return fmt.Errorf("remove link %s: %w", n, err)
		}
	}
	for _, n := range []string{"rel-dir-moved", "up-moved"} {
		if err := os.Remove(e.path("sub", n)); err != nil {
			return fmt.Errorf("remove link %s: %w", n, err)
		}
	}
	for _, c := range []struct {
		path   string
		before fileFacts
	}{{target, targetBefore}, {inner, innerBefore}} {
		after, err := factsOf(c.path)
		if err != nil {
			return fmt.Errorf("link target after removing its links: %w", err)
		}
		if d := c.before.diff(after); d != "" {
			return fmt.Errorf("link target %s changed by rename/remove of its links: %s", c.path, d)
		}
	}
	if passwdErr == nil {
		after, err := factsOf("/etc/passwd")
		if err != nil {
			return fmt.Errorf("/etc/passwd after removing a link to it: %w", err)
		}
		if d := passwdBefore.diff(after); d != "" {
			return fmt.Errorf("/etc/passwd changed by removing a link to it: %s", d)
		}
	}
	if err := expectListing(e.dir, []string{"target", "sub"}, e.opts.NFS); err != nil {
		return err
	}
	if err := expectListing(e.path("sub"), []string{"inner"}, e.opts.NFS); err != nil {
		return err
	}
	if sentinelDir != "" {
		return os.RemoveAll(sentinelDir)
	}
	return nil
}

// checkLinks checks each link in dir: lstat says symlink with the target's length, readlink returns the
// target verbatim.
func checkLinks(e *env, dir string, links []linkCase) error {
	for _, l := range links {
		p := filepath.Join(dir, l.name)
		st, err := lstat(p)
		if err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return fmt.Errorf("lstat %s: mode %o, want a symlink", l.name, st.Mode)
		}
		if st.Size != int64(len(l.target)) {
			return fmt.Errorf("lstat %s: size %d, want the target's length %d", l.name, st.Size, len(l.target))
		}
		got, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", l.name, err)
		}
		if got != l.target {
			return fmt.Errorf("readlink %s: %q, want %q verbatim", l.name, got, l.target)
		}
	}
	return nil
}

func runHardlinks(e *env) error {
	a, b, c := e.path("a"), e.path("b"), e.path("sub", "c")
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		return err
	}
	want := randomBytes(e.rng, 10000)
	if err := writeFile(a, want, 0o644); err != nil {
		return err
	}
	links := func(step string, want uint64, paths ...string) (uint64, error) {
		var ino uint64
		for i, p := range paths {
			st, err := lstat(p)
			if err != nil {
				return 0, fmt.Errorf("after %s: %w", step, err)
			}
			if uint64(st.Nlink) != want {
				return 0, fmt.Errorf("after %s: nlink of %s is %d, want %d", step, p, st.Nlink, want)
			}
			if i > 0 && st.Ino != ino {
				return 0, fmt.Errorf("after %s: %s has inode %d, want %d (same file)", step, p, st.Ino, ino)
			}
			ino = st.Ino
		}
		return ino, nil
	}
	ino, err := links("create", 1, a)
	if err != nil {
		return err
	}
	if err := os.Link(a, b); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	if _, err := links("link", 2, a, b); err != nil {
		return err
	}
	if err := os.Link(b, c); err != nil {
		return fmt.Errorf("link into another directory: %w", err)
	}
	if _, err := links("second link", 3, a, b, c); err != nil {
		return err
	}

	// Content is shared: a write through one name is read through the others.
	f, err := os.OpenFile(b, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	patch := []byte("written through b")
	if _, err := f.WriteAt(patch, 5000); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	copy(want[5000:], patch)
	for _, p := range []string{a, c} {
		e.hook(StageWritten, p)
		if err := verifyFile(p, want); err != nil {
			return fmt.Errorf("write through one hard link, read through another: %w", err)
		}
	}

	err = os.Link(a, b)
	if err := expectErrno("link onto an existing name", err, unix.EEXIST); err != nil {
		return err
	}
	err = os.Link(e.path("sub"), e.path("dirlink"))
	if err := expectErrno("hard link to a directory", err, unix.EPERM, unix.EISDIR); err != nil {
		return err
	}

	if err := os.Remove(c); err != nil {
		return err
	}
	if _, err := links("removing one link", 2, a, b); err != nil {
		return err
	}
	if err := os.Remove(a); err != nil {
		return err
	}
	ino2, err := links("removing the original name", 1, b)
	if err != nil {
		return err
	}
	if ino2 != ino {
		return fmt.Errorf("inode changed from %d to %d while links were removed", ino, ino2)
	}
	e.hook(StageWritten, b)
	if err := verifyFile(b, want); err != nil {
		return fmt.Errorf("last remaining link: %w", err)
	}
	if err := expectListing(e.dir, []string{"b", "sub"}, e.opts.NFS); err != nil {
		return err
	}
	return expectGone(a)
}
