package dist

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/initramfs"
	"github.com/luksmount/luksmount/initramfs/debpkg"
)

// Platforms are the archives a release has, as GOOS/GOARCH. The guest image in each is the
// host's own architecture (HVF and KVM only run guests of the host's architecture).
var Platforms = []string{"darwin/arm64", "darwin/amd64", "linux/amd64", "linux/arm64"}

// ArchiveName is the file name of one release archive.
func ArchiveName(version, goos, goarch string) string {
	return fmt.Sprintf("luksmount-%s-%s-%s.tar.gz", version, goos, goarch)
}

// Layout inside an archive (under its top directory), the same as an installed prefix:
// images.Find looks for <prefix>/share/luksmount/<arch>/ next to <prefix>/bin/luksmount.
const (
	BinPath     = "bin/luksmount"
	ShareDir    = "share/luksmount"
	DocDir      = "share/doc/luksmount"
	LicensesDir = DocDir + "/licenses"
)

// ArchiveInput is what one archive is made of.
type ArchiveInput struct {
	Version  string
	GOOS     string
	GOARCH   string
	Binary   string // the luksmount binary built for GOOS/GOARCH
	ImageDir string // build/<GOARCH>: vmlinuz, initramfs.cpio.lz4, SHA256SUMS
	Readme   string // README.md
	License  string // LICENSE: luksmount's own licence (Apache-2.0, as the formula's `license`)
	Lock     *debpkg.Lock
	Cache    debpkg.Cache
	ModCache string    // go env GOMODCACHE
	GOROOT   string    // go env GOROOT (for Go's own LICENSE)
	Mtime    time.Time // of every entry: the commit time
}

// Entries lists the files of one archive (without the top directory).
func Entries(in ArchiveInput) ([]Entry, error) {
	arch := in.GOARCH
	imgDir := path.Join(ShareDir, arch)
	entries := []Entry{
		{Name: BinPath, Mode: 0o755, Src: in.Binary},
		{Name: "README.md", Src: in.Readme},
		{Name: "LICENSE", Src: in.License},
	}
	if in.License == "" {
		return nil, fmt.Errorf("no LICENSE given: every archive carries luksmount's own licence")
	}
	for _, n := range []string{images.KernelName, images.InitrdName, images.SumsName} {
		src := filepath.Join(in.ImageDir, n)
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("guest image file missing (%w): run `make images`", err)
		}
		entries = append(entries, Entry{Name: path.Join(imgDir, n), Src: src})
	}
	if err := images.VerifySums(in.ImageDir); err != nil {
		return nil, fmt.Errorf("%w: run `make images`", err)
	}

	bi, err := buildinfo.ReadFile(in.Binary)
	if err != nil {
		return nil, fmt.Errorf("cannot read Go build info of %s: %w", in.Binary, err)
	}
	if goos, goarch := setting(bi, "GOOS"), setting(bi, "GOARCH"); goos != in.GOOS || goarch != in.GOARCH {
		return nil, fmt.Errorf("%s is built for %s/%s, not %s/%s", in.Binary, goos, goarch, in.GOOS, in.GOARCH)
	}
	comps, notices, err := GoModules(bi, BinPath, in.ModCache, in.GOROOT)
	if err != nil {
		return nil, err
	}
	// The guest agent (/init of the image) is a Go binary too: its modules are listed from the
	// copy inside the image, so the notices match exactly what ships.
	agent, err := agentBuildInfo(filepath.Join(in.ImageDir, images.InitrdName))
	if err != nil {
		return nil, err
	}
	c, n, err := GoModules(agent, path.Join(imgDir, images.InitrdName)+" (/init, the guest agent)", in.ModCache, in.GOROOT)
	if err != nil {
		return nil, err
	}
	comps, notices = append(comps, c...), append(notices, n...)
	c, n, err = DebianPackages(in.Lock, in.Cache, arch, "agent", path.Join(imgDir, "{vmlinuz,initramfs.cpio.lz4}"))
	if err != nil {
		return nil, err
	}
	comps, notices = append(comps, c...), append(notices, n...)

	seen := map[string]string{}
	for _, n := range notices {
		if prev, ok := seen[n.Name]; ok {
			if prev != n.Src {
				return nil, fmt.Errorf("two licence files for %s: %s and %s", n.Name, prev, n.Src)
			}
			continue // the same module in the binary and in the agent
		}
		seen[n.Name] = n.Src
		entries = append(entries, Entry{Name: path.Join(LicensesDir, n.Name), Src: n.Src})
	}
	entries = append(entries, Entry{Name: path.Join(LicensesDir, "README.md"), Data: Index(in.Version, comps)})
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}

func agentBuildInfo(image string) (*debug.BuildInfo, error) {
	f, err := os.Open(image)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := initramfs.ReadImage(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	init, ok := recs["init"]
	if !ok {
		return nil, fmt.Errorf("%s has no /init", image)
	}
	bi, err := buildinfo.Read(bytes.NewReader(init.Data))
	if err != nil {
		return nil, fmt.Errorf("cannot read Go build info of /init in %s: %w", image, err)
	}
	return bi, nil
}

// WriteArchive writes dir/ArchiveName(...) and returns its path.
func WriteArchive(in ArchiveInput, dir string) (string, error) {
	entries, err := Entries(in)
	if err != nil {
		return "", err
	}
	name := ArchiveName(in.Version, in.GOOS, in.GOARCH)
	out := filepath.Join(dir, name)
	var buf bytes.Buffer
	if err := WriteTarGz(&buf, strings.TrimSuffix(name, ".tar.gz"), entries, in.Mtime); err != nil {
		return "", err
	}
	if err := writeAtomic(out, buf.Bytes()); err != nil {
		return "", err
	}
	return out, nil
}

// WriteSums writes dir/SHA256SUMS for the archives in dir, in sha256sum's format, sorted.
func WriteSums(dir string) (map[string]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "luksmount-*.tar.gz"))
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no archives in %s", dir)
	}
	sort.Strings(m)
	sums := map[string]string{}
	var b strings.Builder
	for _, f := range m {
		s, err := fileSHA256(f)
		if err != nil {
			return nil, err
		}
		sums[filepath.Base(f)] = s
		fmt.Fprintf(&b, "%s  %s\n", s, filepath.Base(f))
	}
	return sums, writeAtomic(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()))
}

func fileSHA256(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func writeAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
