//go:build linux || darwin

package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Manifest is what write-fsync-record made durable: paths are relative to the target directory, so a
// verify run may use another mount point.
type Manifest struct {
	Version int            `json:"version"`
	Created time.Time      `json:"created"`
	Root    string         `json:"root"`
	Files   []ManifestFile `json:"files"`
}

// ManifestFile is one recorded file.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

const manifestVersion = 1

func runWriteFsyncRecord(e *env) error {
	if e.opts.Manifest == "" {
		return e.skip("no -manifest path given")
	}
	if inside(e.root, e.opts.Manifest) {
		return fmt.Errorf("manifest %s is inside the tested directory %s; give a path outside it", e.opts.Manifest, e.root)
	}
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		return err
	}
	var files []ManifestFile
	record := func(path string, data []byte) error {
		rel, err := filepath.Rel(e.root, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		files = append(files, ManifestFile{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		return nil
	}
	for i, size := range []int{0, 1, 511, 4096, 4097, 65539, 1<<20 + 1, 3<<20 + 7} {
		p := e.path(fmt.Sprintf("f%d-%d", i, size))
		if i%2 == 1 {
			p = e.path("sub", fmt.Sprintf("f%d-%d", i, size))
		}
		data := randomBytes(e.rng, size)
		if err := writeSynced(p, data, os.O_CREATE|os.O_EXCL); err != nil {
			return err
		}
		if err := record(p, data); err != nil {
			return err
		}
	}
	// An in-place overwrite, made durable.
	over := e.path("overwritten")
	data := randomBytes(e.rng, 200000)
	if err := writeSynced(over, data, os.O_CREATE|os.O_EXCL); err != nil {
		return err
	}
	patch := randomBytes(e.rng, 10000)
	f, err := os.OpenFile(over, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(patch, 95000); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", over, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	copy(data[95000:], patch)
	if err := record(over, data); err != nil {
		return err
	}
	// The editor's atomic save: write a temporary file, fsync, rename over the real name, fsync the dir.
	saved := e.path("saved")
	if err := writeSynced(saved, []byte("old version"), os.O_CREATE|os.O_EXCL); err != nil {
		return err
	}
	data = randomBytes(e.rng, 30000)
	if err := writeSynced(saved+".tmp", data, os.O_CREATE|os.O_EXCL); err != nil {
		return err
	}
	if err := os.Rename(saved+".tmp", saved); err != nil {
		return err
	}
	if err := record(saved, data); err != nil {
		return err
	}
	for _, d := range []string{e.path("sub"), e.dir, e.root} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	// Check what was written before declaring it durable.
	var total int64
	for _, mf := range files {
		p := filepath.Join(e.root, mf.Path)
		e.hook(StageWritten, p)
		if err := checkRecorded(p, mf); err != nil {
			return err
		}
		total += mf.Size
	}
	m := Manifest{Version: manifestVersion, Created: time.Now().UTC(), Root: e.root, Files: files}
	if err := writeManifest(e.opts.Manifest, m); err != nil {
		return err
	}
	e.note("recorded %d files (%d bytes) under %s in %s", len(files), total, e.dir, e.opts.Manifest)
	return nil
}

func runVerifyManifest(e *env) error {
	if e.opts.Manifest == "" {
		return e.skip("no -manifest path given")
	}
	b, err := os.ReadFile(e.opts.Manifest)
	if err != nil {
		return fmt.Errorf("cannot read manifest (run write-fsync-record first): %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("cannot parse manifest %s: %w", e.opts.Manifest, err)
	}
	if m.Version != manifestVersion {
		return fmt.Errorf("manifest %s has version %d, want %d", e.opts.Manifest, m.Version, manifestVersion)
	}
	if len(m.Files) == 0 {
		return fmt.Errorf("manifest %s records no files", e.opts.Manifest)
	}
	var bad []string
	for _, mf := range m.Files {
		p := filepath.Join(e.root, mf.Path)
		e.hook(StageWritten, p)
		if err := checkRecorded(p, mf); err != nil {
			bad = append(bad, err.Error())
		}
	}
	e.note("manifest from %s: %d files", m.Created.Format(time.RFC3339), len(m.Files))
	if len(bad) > 0 {
		e.details = append(e.details, bad...)
		return fmt.Errorf("%d of %d recorded files lost or changed; first: %s", len(bad), len(m.Files), bad[0])
	}
	return nil
}

// checkRecorded checks a file against its manifest entry.
func checkRecorded(path string, mf ManifestFile) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("recorded file %s: %w", mf.Path, err)
	}
	if int64(len(data)) != mf.Size {
		return fmt.Errorf("recorded file %s: size %d, want %d", mf.Path, len(data), mf.Size)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != mf.SHA256 {
		return fmt.Errorf("recorded file %s: sha256 %s, want %s", mf.Path, got, mf.SHA256)
	}
	return nil
}

// writeSynced writes data to path and fsyncs it before closing.
func writeSynced(path string, data []byte, flag int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|flag, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot fsync directory %s: %w", dir, err)
	}
	return nil
}

// writeManifest replaces the manifest atomically and durably, so a crash leaves the old or the new one.
func writeManifest(path string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeSynced(tmp, append(b, '\n'), os.O_CREATE|os.O_TRUNC); err != nil {
		return fmt.Errorf("cannot write manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write manifest: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// inside reports whether path is root or lies under it (lexically, after making both absolute).
func inside(root, path string) bool {
	r, err1 := filepath.Abs(root)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	return p == r || strings.HasPrefix(p, r+string(filepath.Separator))
}

func runConcurrentWriters(e *env) error {
	n := e.opts.Writers
	// Each writer gets its own random stream so the content does not depend on scheduling.
	streams := make([]*rand.Rand, n)
	for i := range streams {
		streams[i] = rand.New(rand.NewPCG(e.seed, uint64(i)+1))
	}

	// Round 1: one file per writer, written in chunks of random size.
	wants := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wants[i] = randomBytes(streams[i], 1<<20+i*4099)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeChunked(e.path(fmt.Sprintf("w%d", i)), wants[i], streams[i], i%2 == 0)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("writer %d: %w", i, err)
		}
	}
	for i := range n {
		p := e.path(fmt.Sprintf("w%d", i))
		e.hook(StageWritten, p)
		if err := verifyFile(p, wants[i]); err != nil {
			return fmt.Errorf("writer %d: %w", i, err)
		}
	}

	// Round 2: disjoint ranges of one file, each writer on its own fd. Ranges are not page aligned so
	// neighbours share pages, which is where client-side write merging goes wrong.
	shared := e.path("shared")
	const region = 256<<10 + 13
	want := make([]byte, n*region)
	for i := range n {
		copy(want[i*region:], randomBytes(streams[i], region))
	}
	if err := writeFile(shared, nil, 0o644); err != nil {
		return err
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pwriteRegion(shared, want[i*region:(i+1)*region], int64(i*region), streams[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("pwrite writer %d: %w", i, err)
		}
	}
	e.hook(StageWritten, shared)
	if err := verifyFile(shared, want); err != nil {
		return fmt.Errorf("disjoint pwrites: %w", err)
	}
	e.note("%d writers: %d own files of ~1 MiB, one shared file of %d bytes", n, n, len(want))
	return nil
}

func writeChunked(path string, data []byte, rng *rand.Rand, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); {
		end := min(len(data), off+1+rng.IntN(64<<10))
		if _, err := f.Write(data[off:end]); err != nil {
			f.Close()
			return fmt.Errorf("write at %d: %w", off, err)
		}
		off = end
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("fsync: %w", err)
		}
	}
	return f.Close()
}

// pwriteRegion writes data at base in chunks, in a random order.
func pwriteRegion(path string, data []byte, base int64, rng *rand.Rand) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	type chunk struct{ off, end int }
	var chunks []chunk
	for off := 0; off < len(data); {
		end := min(len(data), off+1+rng.IntN(16<<10))
		chunks = append(chunks, chunk{off, end})
		off = end
	}
	rng.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
	for _, c := range chunks {
		if _, err := f.WriteAt(data[c.off:c.end], base+int64(c.off)); err != nil {
			f.Close()
			return fmt.Errorf("pwrite at %d: %w", base+int64(c.off), err)
		}
	}
	return f.Close()
}
