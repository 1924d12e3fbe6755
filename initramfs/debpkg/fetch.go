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
	if err := c.FetchAll([]Pin{p}); err != nil {
		return "", err
	}
	return c.DebPath(p), nil
}

// FetchAll makes sure every pin's .deb is cached and matches its sha256, downloading the
// missing ones with a single apt-get call (one call per package is several times slower).
func (c Cache) FetchAll(pins []Pin) error {
	var missing []Pin
	for _, p := range pins {
		if sum, err := fileSHA256(c.DebPath(p)); err != nil || sum != p.SHA256 {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	dir := filepath.Join(c.Dir, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create package cache: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return fmt.Errorf("cannot create download dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	specs := make([]string, len(missing))
	for i, p := range missing {
		specs[i] = p.Spec()
	}
	if err := c.Apt.Download(tmp, specs...); err != nil {
		// Name the culprit: apt fails the whole batch if one version is gone.
		for _, p := range missing {
			if one := c.Apt.Download(tmp, p.Spec()); one != nil {
				return fmt.Errorf("%w: %s %s (%s): run `make lock` to pin the current version (%v)", ErrNotDownloadable, p.Name, p.Version, p.DebArch, one)
			}
		}
		return fmt.Errorf("cannot download packages: %w", err)
	}
	for _, p := range missing {
		got := filepath.Join(tmp, filepath.Base(c.DebPath(p)))
		sum, err := fileSHA256(got)
		if err != nil {
			return fmt.Errorf("apt-get download %s did not produce %s: %w", p.Spec(), filepath.Base(got), err)
		}
		if sum != p.SHA256 {
			return fmt.Errorf("%w: %s %s has sha256 %s but the lock pins %s: the mirror's package changed; run `make lock` if that is expected", ErrChecksum, p.Name, p.Version, sum, p.SHA256)
		}
		if err := os.Rename(got, c.DebPath(p)); err != nil {
			return fmt.Errorf("cannot store %s: %w", c.DebPath(p), err)
		}
	}
	return nil
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
