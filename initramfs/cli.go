package initramfs

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/luksmount/luksmount/initramfs/debpkg"
)

// DefaultLock is the lock file, relative to the repository root.
const DefaultLock = "initramfs/packages.lock"

const usage = `usage:
  luksmount-mkimage build -arch amd64|arm64 -init PATH [-variant agent] [-out build/ARCH] [-lock FILE] [-cache .cache]
  luksmount-mkimage lock [-arch amd64,arm64] [-lock FILE]
  luksmount-mkimage diff A.cpio.lz4 B.cpio.lz4   (which entries differ; exit 1 if any)
variants: `

// Run is the luksmount-mkimage command line.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		return fmt.Errorf("missing subcommand\n%s%s", usage, strings.Join(VariantNames(), ", "))
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:], stdout, stderr)
	case "lock":
		return runLock(args[1:], stdout, stderr)
	case "diff":
		return runDiff(args[1:], stdout)
	default:
		return fmt.Errorf("unknown subcommand %q\n%s%s", args[0], usage, strings.Join(VariantNames(), ", "))
	}
}

func runBuild(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	arch := fs.String("arch", "", "image architecture: amd64 or arm64")
	variant := fs.String("variant", "agent", "image variant: "+strings.Join(VariantNames(), ", "))
	initBin := fs.String("init", "", "static binary to install as /init")
	out := fs.String("out", "", "output directory (default build/ARCH)")
	lockFile := fs.String("lock", DefaultLock, "package lock file")
	cache := fs.String("cache", ".cache", "download and unpack cache")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, ok := Variants[*variant]
	if !ok {
		return fmt.Errorf("unknown variant %q (known: %s)", *variant, strings.Join(VariantNames(), ", "))
	}
	if _, err := lookupArch(*arch); err != nil {
		return err
	}
	if *initBin == "" {
		return errors.New("-init is required: the static binary that becomes /init")
	}
	if *out == "" {
		*out = filepath.Join("build", *arch)
	}
	f, err := os.Open(*lockFile)
	if err != nil {
		return fmt.Errorf("cannot open lock file (run `make lock` to create it): %w", err)
	}
	lock, err := debpkg.ParseLock(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *lockFile, err)
	}
	mtime, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	res, err := Build(Options{
		Arch: *arch, Variant: v, Init: *initBin, Lock: lock,
		Cache:  debpkg.Cache{Dir: *cache, Apt: debpkg.SystemApt{}},
		OutDir: *out, Mtime: mtime, Log: stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s kernel=%s modules=%d size=%d raw=%d sha256=%s took=%s\n", *arch, v.Name, res.Kernel, len(res.Modules), res.Size, res.RawSize, res.ImageSHA, res.Duration.Round(time.Millisecond))
	return nil
}

// sourceDateEpoch is the archive mtime: $SOURCE_DATE_EPOCH if set, else 0.
func sourceDateEpoch() (uint32, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time: %w", s, err)
	}
	return uint32(n), nil
}

func runLock(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	archList := fs.String("arch", strings.Join(Arches(), ","), "architectures to pin")
	lockFile := fs.String("lock", DefaultLock, "package lock file to rewrite")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var wants []debpkg.Want
	for _, a := range strings.Split(*archList, ",") {
		if _, err := lookupArch(a); err != nil {
			return err
		}
		for _, n := range VariantNames() {
			v := Variants[n]
			wants = append(wants, debpkg.Want{Variant: n, Arch: a, Kernel: v.KernelMeta(a), Roots: v.Packages, Exclude: v.Exclude})
		}
	}
	start := time.Now()
	pins, err := debpkg.Resolve(debpkg.SystemApt{}, wants)
	if err != nil {
		return fmt.Errorf("cannot resolve packages from apt (is `apt-get update` current and arm64 a dpkg architecture?): %w", err)
	}
	var buf bytes.Buffer
	if err := (&debpkg.Lock{Pins: pins}).Format(&buf); err != nil {
		return err
	}
	old, _ := os.ReadFile(*lockFile)
	if err := writeFile(*lockFile, buf.Bytes()); err != nil {
		return err
	}
	state := "changed"
	if bytes.Equal(old, buf.Bytes()) {
		state = "unchanged"
	}
	fmt.Fprintf(stdout, "%s: %d packages pinned for %s (%s, %s)\n", *lockFile, len(pins), *archList, state, time.Since(start).Round(time.Millisecond))
	return nil
}

// ErrImagesDiffer is returned by the diff subcommand when the images are not identical.
var ErrImagesDiffer = errors.New("images differ")

func runDiff(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("diff needs two image files")
	}
	var imgs [2]map[string]cpio.Record
	for i, name := range args {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("cannot open image: %w", err)
		}
		imgs[i], err = ReadImage(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	d := DiffImages(imgs[0], imgs[1])
	for _, l := range d {
		fmt.Fprintln(stdout, l)
	}
	if len(d) > 0 {
		return fmt.Errorf("%w: %d entries", ErrImagesDiffer, len(d))
	}
	return nil
}
