package debpkg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotDownloadable means the pinned version is gone from the mirrors (Debian drops superseded
// versions); the fix is to re-pin.
var ErrNotDownloadable = errors.New("pinned package is no longer downloadable")

// ErrChecksum means a downloaded .deb does not match the sha256 in the lock.
var ErrChecksum = errors.New("package checksum mismatch")

// Cache keeps downloaded .debs and their unpacked trees, keyed by sha256 so that a rebuild is
// offline and a changed pin never reuses stale files.
type Cache struct {
	Dir string // e.g. .cache; holds debs/ and unpacked/
	Apt Apt
}

// DebPath returns where the .deb of p is kept.
func (c Cache) DebPath(p Pin) string {
	return filepath.Join(c.Dir, "debs", fmt.Sprintf("%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), p.DebArch))
}

// Fetch returns the verified .deb of p, downloading it with apt-get if it is not cached.
func (c Cache) Fetch(p Pin) (string, error) {
	dst := c.DebPath(p)
	if sum, err := fileSHA256(dst); err == nil && sum == p.SHA256 {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("cannot create package cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".download-")
	if err != nil {
		return "", fmt.Errorf("cannot create download dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := c.Apt.Download(tmp, p.Spec()); err != nil {
		return "", fmt.Errorf("%w: %s %s (%s): run `make lock` to pin the current version (%v)", ErrNotDownloadable, p.Name, p.Version, p.DebArch, err)
	}
	got, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil || len(got) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files, want 1", p.Spec(), len(got))
	}
	sum, err := fileSHA256(got[0])
	if err != nil {
		return "", err
	}
	if sum != p.SHA256 {
		return "", fmt.Errorf("%w: %s %s has sha256 %s but the lock pins %s: the mirror's package changed; run `make lock` if that is expected", ErrChecksum, p.Name, p.Version, sum, p.SHA256)
	}
	if err := os.Rename(got[0], dst); err != nil {
		return "", fmt.Errorf("cannot store %s: %w", dst, err)
	}
	return dst, nil
}

// Unpack fetches and verifies p and returns a directory holding its unpacked contents
// (dpkg-deb -x), unpacking only the first time.
func (c Cache) Unpack(p Pin) (string, error) {
	deb, err := c.Fetch(p)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(c.Dir, "unpacked", p.SHA256)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("cannot create unpack cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return "", fmt.Errorf("cannot create unpack dir: %w", err)
	}
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("dpkg-deb -x %s: %s: %w", deb, firstLine(string(out)), err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil // another build unpacked it meanwhile
		}
		return "", fmt.Errorf("cannot store unpacked %s: %w", p.Name, err)
	}
	return dir, nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("cannot read %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
