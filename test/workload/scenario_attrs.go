//go:build linux || darwin

package workload

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const specialBits = unix.S_ISUID | unix.S_ISGID | unix.S_ISVTX

func runChmod(e *env) error {
	root := os.Geteuid() == 0
	file, dir := e.path("f"), e.path("d")
	body := randomBytes(e.rng, 5000)
	if err := writeFile(file, body, 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	var notAllowed int
	set := func(path string, mode uint32, byFD bool) error {
		var err error
		if byFD {
			var f *os.File
			if f, err = os.Open(path); err != nil {
				return err
			}
			err = unix.Fchmod(int(f.Fd()), mode)
			f.Close()
		} else {
			err = unix.Chmod(path, mode)
		}
		if err != nil {
			if !root && mode&specialBits != 0 && isChmodNotAllowed(err) {
				notAllowed++
				e.note("chmod %o on %s not allowed as uid %d: %v", mode, path, os.Geteuid(), err)
				return nil
			}
			return fmt.Errorf("chmod %o %s: %w", mode, path, err)
		}
		st, err := lstat(path)
		if err != nil {
			return err
		}
		got := uint32(st.Mode) & 0o7777
		if got == mode {
			return nil
		}
		// Unprivileged users may have special bits silently dropped (setgid when not in the group).
		if !root && got&0o777 == mode&0o777 && mode&specialBits != 0 {
			notAllowed++
			e.note("chmod %o on %s: kernel kept %o as uid %d", mode, path, got, os.Geteuid())
			return nil
		}
		return fmt.Errorf("chmod %o %s: mode reads back as %o", mode, path, got)
	}
	for i, m := range []uint32{0o600, 0o755, 0o000, 0o444, 0o4755, 0o2755, 0o6711, 0o1644, 0o7777, 0o640} {
		if err := set(file, m, i%3 == 2 && m&0o400 != 0); err != nil {
			return err
		}
	}
	for i, m := range []uint32{0o700, 0o1777, 0o2775, 0o3770, 0o4755, 0o555, 0o755} {
		if err := set(dir, m, i%3 == 2); err != nil {
			return err
		}
	}
	// Permissions must be enforced for an unprivileged user (root bypasses them).
	if !root {
		if err := set(file, 0o000, false); err != nil {
			return err
		}
		_, err := os.Open(file)
		if err := expectErrno("open of a mode-000 file as a non-root user", err, unix.EACCES); err != nil {
			return err
		}
		if err := set(dir, 0o555, false); err != nil {
			return err
		}
		err = writeFile(e.path("d", "x"), nil, 0o644)
		if err := expectErrno("create in a mode-555 directory as a non-root user", err, unix.EACCES); err != nil {
			return err
		}
		if err := set(dir, 0o755, false); err != nil {
			return err
		}
		if err := set(file, 0o644, false); err != nil {
			return err
		}
	} else {
		e.note("skipped sub-check permission enforcement: running as root")
	}
	if notAllowed > 0 {
		e.note("%d special-bit changes not allowed for a non-root user were not checked", notAllowed)
	}
	// chmod must not touch the content.
	e.hook(StageWritten, file)
	return verifyFile(file, body)
}

func runChown(e *env) error {
	if uid := os.Geteuid(); uid != 0 {
		return e.skip("chown needs root; running as uid %d", uid)
	}
	file, dir, link := e.path("f"), e.path("d"), e.path("l")
	if err := writeFile(file, []byte("owned"), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink("f", link); err != nil {
		return err
	}
	owner := func(path string, uid, gid uint32) error {
		st, err := lstat(path)
		if err != nil {
			return err
		}
		if st.Uid != uid || st.Gid != gid {
			return fmt.Errorf("owner of %s is %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
		}
		return nil
	}
	steps := []struct {
		what     string
		do       func() error
		path     string
		uid, gid uint32
	}{
		{"chown file", func() error { return os.Chown(file, 1234, 5678) }, file, 1234, 5678},
		{"chown file gid only", func() error { return os.Chown(file, -1, 910) }, file, 1234, 910},
		{"chown file uid only", func() error { return os.Chown(file, 4321, -1) }, file, 4321, 910},
		{"chown dir", func() error { return os.Chown(dir, 2345, 6789) }, dir, 2345, 6789},
		{"fchown", func() error {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Chown(65534, 65534)
		}, file, 65534, 65534},
		// Large ids (beyond 16 bits) survive.
		{"chown file large ids", func() error { return os.Chown(file, 100000, 200000) }, file, 100000, 200000},
		{"lchown link", func() error { return os.Lchown(link, 3456, 7890) }, link, 3456, 7890},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		if err := owner(s.path, s.uid, s.gid); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	// lchown changed the link, not its target.
	if err := owner(file, 100000, 200000); err != nil {
		return fmt.Errorf("lchown of a link changed its target: %w", err)
	}
	if err := os.Chown(file, 0, 0); err != nil {
		return err
	}
	if err := owner(file, 0, 0); err != nil {
		return err
	}
	e.hook(StageWritten, file)
	return verifyFile(file, []byte("owned"))
}

func runUtimes(e *env) error {
	file, dir, link := e.path("f"), e.path("d"), e.path("l")
	if err := writeFile(file, []byte("times"), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink("f", link); err != nil {
		return err
	}
	if e.opts.NFS {
		e.note("NFS: times may read back truncated to microseconds")
	}
	ts := func(t time.Time) unix.Timespec { return unix.NsecToTimespec(t.UnixNano()) }
	omit := unix.Timespec{Nsec: utimeOmit}
	set := func(path string, at, mt unix.Timespec, flags int) error {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{at, mt}, flags); err != nil {
			return fmt.Errorf("utimensat %s: %w", path, err)
		}
		return nil
	}
	check := func(path string, at, mt time.Time) error {
		st, err := lstat(path)
		if err != nil {
			return err
		}
		gotA := time.Unix(st.Atim.Unix()).UTC()
		gotM := time.Unix(st.Mtim.Unix()).UTC()
		if !e.sameTime(gotA, at) {
			return fmt.Errorf("atime of %s reads back as %s, want %s", path, gotA.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
		}
		if !e.sameTime(gotM, mt) {
			return fmt.Errorf("mtime of %s reads back as %s, want %s", path, gotM.Format(time.RFC3339Nano), mt.Format(time.RFC3339Nano))
		}
		return nil
	}
	at := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	mt := time.Date(2040, 7, 8, 9, 10, 11, 987654321, time.UTC) // past 2038: needs more than 31 bits
	if err := set(file, ts(at), ts(mt), 0); err != nil {
		return err
	}
	if err := check(file, at, mt); err != nil {
		return err
	}
	mt2 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := set(file, omit, ts(mt2), 0); err != nil {
		return err
	}
	if err := check(file, at, mt2); err != nil {
		return fmt.Errorf("after setting only mtime: %w", err)
	}
	at2 := time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	if err := set(file, ts(at2), omit, 0); err != nil {
		return err
	}
	if err := check(file, at2, mt2); err != nil {
		return fmt.Errorf("after setting only atime: %w", err)
	}
	dat, dmt := time.Date(2011, 3, 4, 5, 6, 7, 500000000, time.UTC), time.Date(2012, 3, 4, 5, 6, 7, 1000, time.UTC)
	if err := set(dir, ts(dat), ts(dmt), 0); err != nil {
		return err
	}
	if err := check(dir, dat, dmt); err != nil {
		return err
	}
	// Setting a link's times leaves its target's alone.
	lat, lmt := time.Date(2015, 1, 2, 3, 4, 5, 6000, time.UTC), time.Date(2016, 1, 2, 3, 4, 5, 7000, time.UTC)
	if err := set(link, ts(lat), ts(lmt), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := check(link, lat, lmt); err != nil {
		return err
	}
	if err := check(file, at2, mt2); err != nil {
		return fmt.Errorf("lutimes of a link changed its target: %w", err)
	}
	// A write moves mtime off the value set.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(" later")); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	st, err := lstat(file)
	if err != nil {
		return err
	}
	if got := time.Unix(st.Mtim.Unix()); !got.After(mt2) {
		return fmt.Errorf("mtime after a write is %s, want later than %s", got.UTC().Format(time.RFC3339Nano), mt2.Format(time.RFC3339Nano))
	}
	e.hook(StageWritten, file)
	return verifyFile(file, []byte("times later"))
}

// sameTime compares a read-back time with the one set; over NFS a microsecond truncation is accepted.
func (e *env) sameTime(got, want time.Time) bool {
	if got.Equal(want) {
		return true
	}
	return e.opts.NFS && got.Equal(want.Truncate(time.Microsecond))
}
