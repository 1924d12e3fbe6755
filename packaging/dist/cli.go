package dist

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/initramfs"
	"github.com/luksmount/luksmount/initramfs/debpkg"
)

const usage = `usage:
  luksmount-dist build -version V -mtime UNIX -bins DIR [-images build] [-out dist] [-base-url URL] [-template FILE] [-platforms os/arch,...]
      DIR/<os>-<arch>/luksmount are the binaries; writes the archives, SHA256SUMS and luksmount.rb
  luksmount-dist verify -version V [-dir dist]   (the formula's sha256s match SHA256SUMS and the archives)`

// Run is the luksmount-dist command line.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		return fmt.Errorf("missing subcommand\n%s", usage)
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:], stdout, stderr)
	case "verify":
		return runVerify(args[1:], stderr)
	}
	return fmt.Errorf("unknown subcommand %q\n%s", args[0], usage)
}

func runBuild(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "release version (build.sh: from git describe)")
	mtime := fs.Int64("mtime", -1, "Unix time of every archive entry (the commit time)")
	bins := fs.String("bins", "", "directory of <os>-<arch>/luksmount binaries")
	imgs := fs.String("images", "build", "directory of <arch>/ guest images")
	out := fs.String("out", "dist", "output directory")
	base := fs.String("base-url", DefaultBaseURL, "where the archives will be downloaded from ({{version}} is replaced)")
	tmpl := fs.String("template", "packaging/homebrew/luksmount.rb.in", "Homebrew formula template")
	lockFile := fs.String("lock", initramfs.DefaultLock, "guest image package lock")
	cache := fs.String("cache", ".cache", "image builder's package cache")
	modCache := fs.String("gomodcache", "", "go env GOMODCACHE")
	goroot := fs.String("goroot", "", "go env GOROOT")
	platforms := fs.String("platforms", strings.Join(Platforms, ","), "os/arch list")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *mtime < 0 || *bins == "" || *modCache == "" || *goroot == "" {
		return fmt.Errorf("build needs -version, -mtime, -bins, -gomodcache and -goroot\n%s", usage)
	}
	lf, err := os.Open(*lockFile)
	if err != nil {
		return err
	}
	lock, err := debpkg.ParseLock(lf)
	lf.Close()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	// Stale archives of other versions would end up in SHA256SUMS.
	old, _ := filepath.Glob(filepath.Join(*out, "luksmount-*.tar.gz"))
	for _, f := range old {
		os.Remove(f)
	}
	// One archive per CPU at a time: compression is most of the time.
	plats := strings.Split(*platforms, ",")
	errs := make([]error, len(plats))
	lines := make([]string, len(plats))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, p := range plats {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok {
			return fmt.Errorf("platform %q is not os/arch", p)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			path, err := WriteArchive(ArchiveInput{
				Version: *version, GOOS: goos, GOARCH: goarch,
				Binary:   filepath.Join(*bins, goos+"-"+goarch, "luksmount"),
				ImageDir: filepath.Join(*imgs, goarch),
				Readme:   "README.md", License: "LICENSE",
				Lock: lock, Cache: debpkg.Cache{Dir: *cache, Apt: debpkg.SystemApt{}},
				ModCache: *modCache, GOROOT: *goroot,
				Mtime: time.Unix(*mtime, 0),
			}, *out)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", p, err)
				return
			}
			fi, _ := os.Stat(path)
			lines[i] = fmt.Sprintf("%s %d bytes (%s)", path, fi.Size(), time.Since(t0).Round(10*time.Millisecond))
		}()
	}
	wg.Wait()
	for i := range plats {
		if errs[i] != nil {
			return errs[i]
		}
		fmt.Fprintln(stdout, lines[i])
	}
	sums, err := WriteSums(*out)
	if err != nil {
		return err
	}
	if !strings.Contains(*platforms, "darwin/") {
		return nil // no macOS archive, no formula
	}
	t, err := os.ReadFile(*tmpl)
	if err != nil {
		return err
	}
	d, err := NewFormulaData(*version, *base, sums)
	if err != nil {
		return err
	}
	rb, err := RenderFormula(t, d)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(*out, "luksmount.rb"), rb); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", filepath.Join(*out, "luksmount.rb"))
	return nil
}

func runVerify(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "release version")
	dir := fs.String("dir", "dist", "directory with the archives, SHA256SUMS and luksmount.rb")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rb, err := os.ReadFile(filepath.Join(*dir, "luksmount.rb"))
	if err != nil {
		return err
	}
	return VerifyFormula(rb, *dir, *version)
}
