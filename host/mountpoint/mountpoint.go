// Package mountpoint picks, creates and removes the directory the decrypted
// drive is mounted on: /Volumes/<label> on macOS (where Finder shows it),
// and on Linux /media/<user>/<label> when run through sudo by a desktop
// user (the udisks convention, so file managers list it) or
// /run/luksmount/mnt/<label> otherwise (root sessions, servers, CI).
package mountpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes is the longest file name macOS and Linux accept.
const MaxNameBytes = 255

// maxSuffix bounds the "-N" collision search.
const maxSuffix = 999

// FS is the part of the file system this package touches; OS is the real one.
type FS interface {
	Lstat(name string) (fs.FileInfo, error)
	Mkdir(name string, perm fs.FileMode) error
	MkdirAll(name string, perm fs.FileMode) error
	Chown(name string, uid, gid int) error
	Remove(name string) error
	ReadDir(name string) ([]fs.DirEntry, error)
}

// OS is FS on the real file system.
type OS struct{}

func (OS) Lstat(n string) (fs.FileInfo, error)     { return os.Lstat(n) }
func (OS) Mkdir(n string, p fs.FileMode) error     { return os.Mkdir(n, p) }
func (OS) MkdirAll(n string, p fs.FileMode) error  { return os.MkdirAll(n, p) }
func (OS) Chown(n string, uid, gid int) error      { return os.Chown(n, uid, gid) }
func (OS) Remove(n string) error                   { return os.Remove(n) }
func (OS) ReadDir(n string) ([]fs.DirEntry, error) { return os.ReadDir(n) }

// User is the person who ran `sudo luksmount`.
type User struct {
	UID, GID int
	Name     string
}

// InvokingUser reads SUDO_UID, SUDO_GID and SUDO_USER (getenv is os.Getenv
// outside tests). ok is false when not run through sudo, or as root.
func InvokingUser(getenv func(string) string) (u User, ok bool) {
	uid, err1 := strconv.Atoi(getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid <= 0 || gid < 0 {
		return User{}, false
	}
	return User{UID: uid, GID: gid, Name: getenv("SUDO_USER")}, true
}

// DefaultParent returns the directory mount points are created in.
func DefaultParent(goos string, u *User) string {
	switch {
	case goos == "darwin":
		return "/Volumes"
	case u != nil && u.Name != "" && SanitizeLabel(u.Name, "") == u.Name:
		return filepath.Join("/media", u.Name)
	default:
		return "/run/luksmount/mnt"
	}
}

// SanitizeLabel turns a file system or LUKS label into a safe single path
// element: no '/', NUL or control characters, no leading dots, trimmed,
// common decomposed accents composed (NFC-ish, as macOS's `nfc` option
// expects), at most MaxNameBytes. An empty result becomes fallback, itself
// sanitised, or "LUKS".
func SanitizeLabel(label, fallback string) string {
	s := sanitize(label)
	if s == "" {
		s = sanitize(fallback)
	}
	if s == "" {
		s = "LUKS"
	}
	return s
}

func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '/':
			b.WriteRune('-')
		case r == 0 || unicode.IsControl(r) || r == '\uFEFF':
		case unicode.IsSpace(r):
			b.WriteRune(' ') // tabs, NBSP and friends become plain spaces
		default:
			b.WriteRune(r)
		}
	}
	s = compose(b.String())
	// A leading dot hides the volume (and "." / ".." are not names).
	s = strings.TrimLeft(s, ". ")
	return truncate(strings.TrimSpace(s), MaxNameBytes)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n])
}

// Composition of Latin letters with one combining mark, for the marks macOS
// file names commonly arrive decomposed with.
var compositions = func() map[[2]rune]rune {
	table := []struct {
		mark       rune
		base, comp string
	}{
		{'\u0300', "AEIOUaeiou", "ÀÈÌÒÙàèìòù"},
		{'\u0301', "AEIOUYaeiouyCcNnSsZz", "ÁÉÍÓÚÝáéíóúýĆćŃńŚśŹź"},
		{'\u0302', "AEIOUaeiou", "ÂÊÎÔÛâêîôû"},
		{'\u0303', "ANOano", "ÃÑÕãñõ"},
		{'\u0308', "AEIOUaeiouy", "ÄËÏÖÜäëïöüÿ"},
		{'\u030A', "AaUu", "ÅåŮů"},
		{'\u0327', "Cc", "Çç"},
		{'\u030C', "CcSsZzEeRrNn", "ČčŠšŽžĚěŘřŇň"},
	}
	m := map[[2]rune]rune{}
	for _, t := range table {
		comp := []rune(t.comp)
		for i, b := range []rune(t.base) {
			m[[2]rune{b, t.mark}] = comp[i]
		}
	}
	return m
}()

func compose(s string) string {
	rs := []rune(s)
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			if c, ok := compositions[[2]rune{out[n-1], r}]; ok {
				out[n-1] = c
				continue
			}
		}
		out = append(out, r)
	}
	return string(out)
}

// Choose returns parent/<name>, or parent/<name>-1, -2, ... for the first
// one with no existing entry (file, directory or dangling link) in fsys.
func Choose(fsys FS, parent, name string) (string, error) {
	for i := 0; i <= maxSuffix; i++ {
		p := filepath.Join(parent, candidate(name, i))
		if _, err := fsys.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, nil
		} else if err != nil {
			return "", fmt.Errorf("cannot check %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("cannot find a free name for %q in %s: %s-1 to %s-%d all exist; remove stale ones", name, parent, name, name, maxSuffix)
}

func candidate(name string, i int) string {
	if i == 0 {
		return name
	}
	suffix := "-" + strconv.Itoa(i)
	return truncate(name, MaxNameBytes-len(suffix)) + suffix
}

// Mountpoint is a directory Create made.
type Mountpoint struct {
	Path string
	fsys FS
}

// Create makes a fresh mount point for label under parent (creating parent
// if needed) and, when owner is set, hands it to the owner: a non-root user
// may only mount NFS on a directory they own (macOS), and can then unmount
// it without sudo. fallback names the mount point when the label is empty.
func Create(fsys FS, parent, label, fallback string, owner *User) (*Mountpoint, error) {
	if err := fsys.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", parent, err)
	}
	name := SanitizeLabel(label, fallback)
	for attempt := 0; attempt < 5; attempt++ {
		p, err := Choose(fsys, parent, name)
		if err != nil {
			return nil, err
		}
		// Mkdir is the atomic claim: losing a race to another process just
		// means trying the next name.
		if err := fsys.Mkdir(p, 0o755); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("cannot create mount point %s: %w", p, err)
		}
		m := &Mountpoint{Path: p, fsys: fsys}
		if owner != nil {
			if err := fsys.Chown(p, owner.UID, owner.GID); err != nil {
				fsys.Remove(p)
				return nil, fmt.Errorf("cannot hand mount point %s to uid %d: %w", p, owner.UID, err)
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot create a mount point for %q in %s: names keep appearing", name, parent)
}

// ErrNotEmpty means Remove left the directory alone because it has entries
// (it is still mounted, or someone wrote into it).
var ErrNotEmpty = errors.New("mount point is not empty")

// Remove deletes the mount point if it is an empty directory. It never
// removes anything else: a still-mounted or non-empty directory is left in
// place and reported with ErrNotEmpty.
func (m *Mountpoint) Remove() error {
	if m == nil || m.Path == "" {
		return nil
	}
	fi, err := m.fsys.Lstat(m.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot remove mount point %s: %w", m.Path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cannot remove mount point %s: it is no longer a directory; left in place", m.Path)
	}
	ents, err := m.fsys.ReadDir(m.Path)
	if err != nil {
		return fmt.Errorf("cannot remove mount point %s: %w", m.Path, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("cannot remove mount point %s: %w (still mounted?); left in place", m.Path, ErrNotEmpty)
	}
	if err := m.fsys.Remove(m.Path); err != nil {
		return fmt.Errorf("cannot remove mount point %s: %w", m.Path, err)
	}
	return nil
}

// Reopen returns the Mountpoint for a path an earlier Create made (for
// example recorded in the session registry), so that process can Remove it.
func Reopen(fsys FS, path string) *Mountpoint { return &Mountpoint{Path: path, fsys: fsys} }
