// Package initramfs builds the luksmount guest images: for one architecture and variant it
// takes pinned Debian packages (kernel, userspace), resolves kernel modules and shared libraries,
// adds the init binary and writes a reproducible LZ4-compressed newc initramfs plus the kernel.
//
// Image contract with the agent (PID 1):
//   - /etc/luksmount/modules: absolute module paths, one per line, dependencies first.
//   - /etc/luksmount/modules.ondemand: "feature: path path ..." lines, the modules one feature
//     (a crypto algorithm, a filesystem) needs beyond those loaded at boot, dependencies first.
//   - /etc/luksmount/image.json: {"arch", "kernel", "variant", "packages": {name: version}}.
//   - binaries at their Debian paths plus /usr counterparts; PATH=/usr/sbin:/usr/bin:/sbin:/bin.
//   - empty /proc /sys /dev /run /tmp /mnt and /dev/console (c 5 1).
package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/luksmount/luksmount/initramfs/debpkg"
	"github.com/luksmount/luksmount/initramfs/elfdeps"
	"github.com/luksmount/luksmount/initramfs/kmod"
)

// MaxImageSize is the budget for a compressed initramfs.
const MaxImageSize = 20 << 20

// ErrNotLocked means the lock file has no packages for the requested image.
var ErrNotLocked = errors.New("no packages pinned")

// Options for Build.
type Options struct {
	Arch    string
	Variant Variant
	Init    string // host path of the binary that becomes /init
	Lock    *debpkg.Lock
	Cache   debpkg.Cache
	OutDir  string    // gets vmlinuz, the image and SHA256SUMS
	Mtime   uint32    // of every archive entry (SOURCE_DATE_EPOCH or 0)
	Log     io.Writer // progress for humans
}

// Result describes a built image.
type Result struct {
	Kernel    string // kernel release, e.g. 6.1.0-56-cloud-amd64
	Image     string // path of the compressed initramfs
	Vmlinuz   string
	Size      int64 // compressed bytes
	RawSize   int64
	Modules   []string // loaded, in order
	Builtin   []string // requested but built into the kernel
	Files     int
	Packages  map[string]string
	ImageSHA  string
	KernelSHA string
	Duration  time.Duration
}

// Build builds one image.
func Build(o Options) (*Result, error) {
	start := time.Now()
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "==> %s/%s: %s\n", o.Arch, o.Variant.Name, fmt.Sprintf(format, a...))
		}
	}
	ai, err := lookupArch(o.Arch)
	if err != nil {
		return nil, err
	}
	pins := o.Lock.For(o.Arch, o.Variant.Name)
	if len(pins) == 0 {
		return nil, fmt.Errorf("%w for variant %s on %s: run `make lock`", ErrNotLocked, o.Variant.Name, o.Arch)
	}
	var kernelPin *debpkg.Pin
	var roots []string
	res := &Result{Packages: map[string]string{}}
	t0 := time.Now()
	if err := o.Cache.FetchAll(pins); err != nil {
		return nil, err
	}
	for i, p := range pins {
		res.Packages[p.Name] = p.Version
		dir, err := o.Cache.Unpack(p)
		if err != nil {
			return nil, err
		}
		if isKernel(p.Name, o.Variant.Kernel, o.Arch) {
			if kernelPin != nil {
				return nil, fmt.Errorf("two kernels pinned for %s/%s: %s and %s", o.Arch, o.Variant.Name, kernelPin.Name, p.Name)
			}
			kernelPin = &pins[i]
			continue
		}
		roots = append(roots, dir)
	}
	if kernelPin == nil {
		return nil, fmt.Errorf("%w: no %s kernel in the lock for %s: run `make lock`", ErrNotLocked, o.Variant.KernelMeta(o.Arch), o.Arch)
	}
	logf("%d packages verified and unpacked (%s)", len(pins), since(t0))

	kdir, err := o.Cache.Unpack(*kernelPin)
	if err != nil {
		return nil, err
	}
	kver := strings.TrimPrefix(kernelPin.Name, "linux-image-")
	res.Kernel = kver
	t := NewTree()

	t0 = time.Now()
	mods, ondemand, err := addModules(t, kdir, kver, o.Variant.ModulesFor(o.Arch), o.Variant.OnDemand)
	if err != nil {
		return nil, err
	}
	res.Modules, res.Builtin = mods.Load, mods.Builtin
	logf("%d modules for kernel %s, %d requested ones built in, %d more on demand (%s)", len(mods.Load), kver, len(mods.Builtin), ondemand, since(t0))

	t0 = time.Now()
	r := elfdeps.Resolver{Root: elfdeps.Sysroot{Roots: roots}, Machine: ai.machine, LibDirs: ai.libDirs()}
	if err := addUserspace(t, r, o.Variant, ai.triplet); err != nil {
		return nil, err
	}
	logf("userspace: %d binaries with their libraries (%s)", len(o.Variant.Binaries), since(t0))

	initBin, err := os.ReadFile(o.Init)
	if err != nil {
		return nil, fmt.Errorf("cannot read init binary: %w", err)
	}
	if err := t.File("/init", initBin, 0o755); err != nil {
		return nil, err
	}
	info, err := json.MarshalIndent(struct {
		Arch     string            `json:"arch"`
		Kernel   string            `json:"kernel"`
		Variant  string            `json:"variant"`
		Packages map[string]string `json:"packages"`
	}{o.Arch, kver, o.Variant.Name, res.Packages}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := t.File("/etc/luksmount/image.json", append(info, '\n'), 0o644); err != nil {
		return nil, err
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/mnt"} {
		perm := uint32(0o755)
		if d == "/tmp" {
			perm = 0o1777
		}
		if err := t.Dir(d, perm); err != nil {
			return nil, err
		}
	}
	if err := t.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return nil, err
	}

	t0 = time.Now()
	var raw bytes.Buffer
	if err := t.WriteCpio(&raw, o.Mtime); err != nil {
		return nil, err
	}
	var comp bytes.Buffer
	if err := LZ4(&comp, raw.Bytes()); err != nil {
		return nil, err
	}
	res.RawSize, res.Size, res.Files = int64(raw.Len()), int64(comp.Len()), len(t.entries)
	if res.Size >= MaxImageSize {
		return nil, fmt.Errorf("%s/%s image is %.1f MiB compressed, over the %d MiB budget: drop modules or binaries from the variant", o.Arch, o.Variant.Name, float64(res.Size)/(1<<20), MaxImageSize>>20)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", o.OutDir, err)
	}
	res.Image = filepath.Join(o.OutDir, o.Variant.Output)
	if err := writeFile(res.Image, comp.Bytes()); err != nil {
		return nil, err
	}
	kimg, err := os.ReadFile(filepath.Join(kdir, "boot", "vmlinuz-"+kver))
	if err != nil {
		return nil, fmt.Errorf("kernel package %s has no /boot/vmlinuz-%s: %w", kernelPin.Name, kver, err)
	}
	res.Vmlinuz = filepath.Join(o.OutDir, "vmlinuz")
	if err := writeFile(res.Vmlinuz, kimg); err != nil {
		return nil, err
	}
	res.ImageSHA, res.KernelSHA = sha(comp.Bytes()), sha(kimg)
	if err := writeSums(o.OutDir); err != nil {
		return nil, err
	}
	logf("wrote %s: %d files, %.2f MiB raw, %.2f MiB lz4 (%s)", res.Image, res.Files, float64(res.RawSize)/(1<<20), float64(res.Size)/(1<<20), since(t0))
	res.Duration = time.Since(start)
	return res, nil
}

// isKernel reports whether a pinned package is the versioned kernel image of the flavour.
func isKernel(name, flavour, arch string) bool {
	return strings.HasPrefix(name, "linux-image-") && strings.HasSuffix(name, "-"+flavour+"-"+arch) && name != "linux-image-"+flavour+"-"+arch
}

// addModules resolves names against the kernel tree kdir and adds the module files and
// /etc/luksmount/modules, then the on-demand sets and /etc/luksmount/modules.ondemand. It
// returns the boot plan and how many modules only load on demand.
func addModules(t *Tree, kdir, kver string, names []string, ondemand map[string][]string) (kmod.Plan, int, error) {
	moddir := filepath.Join(kdir, "lib", "modules", kver)
	if err := depmod(kdir, kver); err != nil {
		return kmod.Plan{}, 0, err
	}
	ix, err := kmod.Load(moddir)
	if err != nil {
		return kmod.Plan{}, 0, err
	}
	plan, err := ix.Resolve(names)
	if err != nil {
		return kmod.Plan{}, 0, fmt.Errorf("kernel %s: %w", kver, err)
	}
	add := func(m string) (string, error) {
		b, err := os.ReadFile(filepath.Join(moddir, filepath.FromSlash(m)))
		if err != nil {
			return "", fmt.Errorf("cannot read module: %w", err)
		}
		p := path.Join("/lib/modules", kver, m)
		return p, t.File(p, b, 0o644)
	}
	var list strings.Builder
	atBoot := map[string]bool{}
	// "path: deps": the agent loads modules in parallel, each once what it needs is in.
	for _, m := range plan.Load {
		p, err := add(m)
		if err != nil {
			return kmod.Plan{}, 0, err
		}
		atBoot[m] = true
		list.WriteString(p + ":")
		for _, d := range ix.DependsOn(m) {
			list.WriteString(" " + path.Join("/lib/modules", kver, d))
		}
		list.WriteString("\n")
	}
	if err := t.File("/etc/luksmount/modules", []byte(list.String()), 0o644); err != nil {
		return kmod.Plan{}, 0, err
	}
	features := make([]string, 0, len(ondemand))
	for f := range ondemand {
		features = append(features, f)
	}
	sort.Strings(features)
	var od strings.Builder
	extra := map[string]bool{}
	for _, f := range features {
		fp, err := ix.Resolve(ondemand[f])
		if err != nil {
			return kmod.Plan{}, 0, fmt.Errorf("kernel %s, on-demand %s: %w", kver, f, err)
		}
		od.WriteString(f + ":")
		for _, m := range fp.Load {
			if atBoot[m] {
				continue
			}
			p, err := add(m)
			if err != nil {
				return kmod.Plan{}, 0, err
			}
			extra[m] = true
			od.WriteString(" " + p)
		}
		od.WriteString("\n")
	}
	if len(features) > 0 {
		if err := t.File("/etc/luksmount/modules.ondemand", []byte(od.String()), 0o644); err != nil {
			return kmod.Plan{}, 0, err
		}
	}
	return plan, len(extra), nil
}

// depmod generates modules.dep in the unpacked kernel (Debian's package ships none) once.
func depmod(kdir, kver string) error {
	marker := filepath.Join(kdir, ".luksmount-depmod")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	bin, err := exec.LookPath("depmod")
	if err != nil {
		if bin, err = exec.LookPath("/sbin/depmod"); err != nil {
			return fmt.Errorf("depmod not found (install kmod: make deps): %w", err)
		}
	}
	if out, err := exec.Command(bin, "-b", kdir, kver).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod -b %s %s: %s: %w", kdir, kver, strings.TrimSpace(string(out)), err)
	}
	return os.WriteFile(marker, nil, 0o644)
}

// addUserspace copies the variant's binaries, their libraries and loader, dlopened libraries,
// extra files and symlinks from the sysroot.
func addUserspace(t *Tree, r elfdeps.Resolver, v Variant, triplet string) error {
	files, err := r.Needs(v.Binaries, v.Libs)
	if err != nil {
		return err
	}
	for _, b := range v.Binaries {
		_, host, err := r.Root.Resolve(b)
		if err != nil {
			return fmt.Errorf("cannot find %s: %w", b, err)
		}
		files = append(files, elfdeps.File{Path: b, Host: host})
		if alt := usrCounterpart(b); alt != "" {
			if err := t.Symlink(alt, b); err != nil {
				return err
			}
		}
	}
	for _, f := range v.Files {
		f = strings.ReplaceAll(f, "{triplet}", triplet)
		_, host, err := r.Root.Resolve(f)
		if err != nil {
			return fmt.Errorf("cannot find %s: %w", f, err)
		}
		files = append(files, elfdeps.File{Path: f, Host: host})
	}
	for _, f := range files {
		if err := copyFile(t, f); err != nil {
			return err
		}
	}
	links := make([]string, 0, len(v.Symlinks))
	for l := range v.Symlinks {
		links = append(links, l)
	}
	sort.Strings(links)
	for _, l := range links {
		if err := t.Symlink(l, v.Symlinks[l]); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(t *Tree, f elfdeps.File) error {
	fi, err := os.Stat(f.Host)
	if err != nil {
		return fmt.Errorf("cannot stat %s: %w", f.Path, err)
	}
	b, err := os.ReadFile(f.Host)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", f.Path, err)
	}
	return t.File(f.Path, b, uint32(fi.Mode().Perm()))
}

// usrCounterpart maps /sbin/x to /usr/sbin/x and back, since Debian 12 packages are not all
// merged-/usr inside.
func usrCounterpart(p string) string {
	for _, pair := range [][2]string{{"/sbin/", "/usr/sbin/"}, {"/bin/", "/usr/bin/"}} {
		if strings.HasPrefix(p, pair[0]) {
			return pair[1] + strings.TrimPrefix(p, pair[0])
		}
		if strings.HasPrefix(p, pair[1]) {
			return pair[0] + strings.TrimPrefix(p, pair[1])
		}
	}
	return ""
}

func writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	return nil
}

// writeSums writes SHA256SUMS (sha256sum -c format) for the kernel and every image in dir.
func writeSums(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.cpio.lz4"))
	if err != nil {
		return err
	}
	names = append(names, filepath.Join(dir, "vmlinuz"))
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return fmt.Errorf("cannot checksum %s: %w", n, err)
		}
		fmt.Fprintf(&b, "%s  %s\n", sha(data), filepath.Base(n))
	}
	return writeFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()))
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
