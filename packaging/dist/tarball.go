// Package dist builds luksmount's release archives, their licence notices and the Homebrew
// formula. Everything that decides the bytes of an archive lives here, in Go, so two runs of the
// same commit give identical files whatever tar or gzip the build machine has.
package dist

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Entry is one file of an archive. Exactly one of Data and Src gives its contents.
type Entry struct {
	Name string // slash-separated, relative (e.g. "bin/luksmount")
	Mode int64  // permission bits: 0o755 for executables, 0o644 otherwise
	Data []byte
	Src  string // host path to copy from
}

// GzipLevel is fixed so the archive bytes do not follow a changed library default. Most of an
// archive is already compressed (kernel, initramfs): level 9 took 2.5x as long for 0.2% less.
const GzipLevel = 6

// WriteTarGz writes entries under root/ as a gzip-compressed tar: entries sorted by name, parent
// directories added, every time set to mtime, owner 0:0 with no user or group names, no gzip
// name or time. The same entries and mtime always give the same bytes.
func WriteTarGz(w io.Writer, root string, entries []Entry, mtime time.Time) error {
	mtime = mtime.UTC().Truncate(time.Second)
	files := map[string]Entry{}
	dirs := map[string]bool{root: true}
	for _, e := range entries {
		name := path.Clean(root + "/" + e.Name)
		if !strings.HasPrefix(name, root+"/") {
			return fmt.Errorf("archive entry %q escapes %s/", e.Name, root)
		}
		if _, dup := files[name]; dup {
			return fmt.Errorf("archive entry %q added twice", e.Name)
		}
		files[name] = e
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	names := make([]string, 0, len(files)+len(dirs))
	for d := range dirs {
		if _, clash := files[d]; clash {
			return fmt.Errorf("archive entry %q is both a file and a directory", d)
		}
		names = append(names, d+"/")
	}
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)

	zw, err := gzip.NewWriterLevel(w, GzipLevel)
	if err != nil {
		return err
	}
	zw.Header = gzip.Header{OS: 255} // no name, no mtime: "unknown" OS keeps it host-independent
	tw := tar.NewWriter(zw)
	for _, n := range names {
		hdr := &tar.Header{Name: n, ModTime: mtime, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		e := files[n]
		data := e.Data
		if e.Src != "" {
			if data, err = os.ReadFile(e.Src); err != nil {
				return fmt.Errorf("cannot read %s for the archive: %w", e.Src, err)
			}
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, e.Mode, int64(len(data))
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
