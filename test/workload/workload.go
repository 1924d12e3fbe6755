//go:build linux || darwin

// Package workload is the checked filesystem workload of luksmount's end-to-end tests: named scenarios that
// exercise a directory (a local directory in unit tests, the kernel NFS client's mount of the export in the
// VM tier) and verify every step they take, reporting one Result per scenario.
//
// Each scenario works in its own fresh subdirectory of the target, removes it after success and leaves it
// in place after a failure so it can be inspected.
package workload

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Stage names the point in a scenario at which Options.Hook is called.
type Stage string

const (
	// StageWritten: the file at Event.Path has been written and is about to be read back and verified.
	StageWritten Stage = "written"
	// StagePopulated: the directory at Event.Path has been populated and is about to be listed.
	StagePopulated Stage = "populated"
)

// Event is passed to Options.Hook; tests use it to inject faults between an action and its check.
type Event struct {
	Scenario string
	Stage    Stage
	Path     string
}

// Options tunes the scenarios. The zero value is the full-size workload.
type Options struct {
	// Outside is a directory outside the tested tree, visible to this process. The symlinks scenario puts a
	// sentinel there and checks that operations on links pointing at it never change it. Empty: that
	// sub-check is skipped and the result says so.
	Outside string
	// Manifest is a path outside the tested tree where write-fsync-record records what it made durable
	// and verify-manifest reads it back. Empty: both scenarios are skipped.
	Manifest string
	// Files is the many-files count (default 10000).
	Files int
	// Writers is the goroutine count of concurrent-writers (default 8).
	Writers int
	// FSXDuration bounds the fsx run (default 20s); FSXMaxOps bounds it by operation count (0: no bound).
	FSXDuration time.Duration
	FSXMaxOps   int
	// FSXMaxSize is the largest file fsx makes (default 256 KiB).
	FSXMaxSize int64
	// SparseOffset is where the sparse scenario writes its data (default 5 GiB).
	SparseOffset int64
	// Seed makes random content and fsx runs reproducible; 0 picks one. Each scenario derives its own seed
	// from it and its name, so a single scenario reproduces when run alone.
	Seed int64
	// NFS relaxes the checks documented as not holding over NFSv3. Run sets it when it detects an NFS
	// mount.
	NFS bool
	// Keep leaves scenario directories in place after success too.
	Keep bool
	// Hook, if set, is called at the stages above.
	Hook func(Event)
	// Refuses lists operations (Refuse*) the filesystem under test cannot do; refused-ops
	// checks each fails with the right error and changes nothing.
	Refuses []string
}

func (o Options) withDefaults() Options {
	if o.Files <= 0 {
		o.Files = 10000
	}
	if o.Writers <= 0 {
		o.Writers = 8
	}
	if o.FSXDuration <= 0 {
		o.FSXDuration = 20 * time.Second
	}
	if o.FSXMaxSize <= 0 {
		o.FSXMaxSize = 256 << 10
	}
	if o.SparseOffset <= 0 {
		o.SparseOffset = 5 << 30
	}
	if o.Seed == 0 {
		o.Seed = rand.Int64N(1<<53) + 1
	}
	return o
}

// Result is the outcome of one scenario. It is also the runner's JSON line.
type Result struct {
	Name       string   `json:"name"`
	OK         bool     `json:"ok"`
	Skipped    bool     `json:"skipped,omitempty"`
	DurationMS int64    `json:"duration_ms"`
	Error      string   `json:"error,omitempty"`
	Details    []string `json:"details,omitempty"`
}

// Scenario is one named, self-checking workload.
type Scenario struct {
	Name string
	Doc  string
	run  func(*env) error
}

// Scenarios lists every scenario in the order Run runs them.
func Scenarios() []Scenario {
	return []Scenario{
		{"files", "create, write, overwrite, append, truncate grow/shrink, O_EXCL, O_TRUNC; content verified after each step", runFiles},
		{"rename", "rename files and directories, across directories, over an existing file or empty dir, then create inside a renamed dir; write through an fd open across a rename", runRename},
		{"remove", "unlink and rmdir; removed names gone from listings; rmdir of a non-empty dir fails; unlink while open", runRemove},
		{"symlinks", "relative, absolute, dangling and outside-pointing links: readlink verbatim, lstat, remove/rename/lchown/lutimes act on the link only, outside sentinel untouched", runSymlinks},
		{"hardlinks", "link: nlink 1->2->1, same inode, content shared both ways", runHardlinks},
		{"chmod", "permission bits and setuid/setgid/sticky on files and dirs, by path and by fd", runChmod},
		{"chown", "uid/gid changes on files, dirs and symlinks (root only)", runChown},
		{"utimes", "atime/mtime set to sub-second values incl. after 2038, UTIME_OMIT, on files, dirs and links; write bumps mtime", runUtimes},
		{"special-files", "mkfifo, mknod b and c, a bound unix socket: listed with their type, mode, owner and device numbers, removed (root only)", runSpecialFiles},
		{"sparse", "a few bytes at 5 GiB and across the 4 GiB boundary: size, data, holes read as zeros, few blocks used, shrink", runSparse},
		{"many-files", "10k files in one directory listed completely (exact names, no duplicates), then removed", runManyFiles},
		{"unicode-names", "NFC and NFD forms as distinct names, emoji, non-UTF-8 bytes, 255-byte names, 256 -> ENAMETOOLONG, spaces/newlines/backslashes", runUnicodeNames},
		{"write-fsync-record", "write files, fsync them and their directory, then record their sha256s in the -manifest file (files are kept)", runWriteFsyncRecord},
		{"verify-manifest", "every file recorded in the -manifest file is present with the recorded size and sha256", runVerifyManifest},
		{"concurrent-writers", "N goroutines each writing its own file, and N goroutines pwriting disjoint ranges of one file; all content verified", runConcurrentWriters},
		{"refused-ops", "operations the filesystem cannot do (Options.Refuses: symlink, hardlink, chmod, chown, mknod) fail with EPERM/ENOTSUP/EINVAL, never EIO or success, and change nothing", runRefused},
		{"fsx", "random read/write/truncate/append/reopen/fsync on one file against an in-memory model; every read verified", runFSX},
	}
}

// ErrNoMatch is returned by Run when the filter selects no scenario.
var ErrNoMatch = errors.New("no scenario matches")

// Run runs the scenarios whose names match filter (nil: all) against dir, calling each (if not nil) with
// every result as it completes.
func Run(ctx context.Context, dir string, filter *regexp.Regexp, opts Options, each func(Result)) ([]Result, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot use target directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("target %s is not a directory", dir)
	}
	opts = opts.withDefaults()
	if !opts.NFS {
		opts.NFS = isNFS(dir)
	}
	var picked []Scenario
	for _, s := range Scenarios() {
		if filter == nil || filter.MatchString(s.Name) {
			picked = append(picked, s)
		}
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("%w %q (names: see -list)", ErrNoMatch, filter.String())
	}
	var results []Result
	for _, s := range picked {
		if ctx.Err() != nil {
			break
		}
		r := runOne(ctx, dir, s, opts)
		results = append(results, r)
		if each != nil {
			each(r)
		}
	}
	return results, ctx.Err()
}

// errSkip marks a scenario that cannot run here; env.skip wraps it with the reason.
var errSkip = errors.New("skipped")

type env struct {
	ctx     context.Context
	name    string
	root    string // the target directory
	dir     string // this scenario's own subdirectory
	opts    Options
	seed    uint64
	rng     *rand.Rand
	details []string
}

func (e *env) note(format string, args ...any) {
	e.details = append(e.details, fmt.Sprintf(format, args...))
}

func (e *env) skip(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSkip, fmt.Sprintf(format, args...))
}

func (e *env) hook(stage Stage, path string) {
	if e.opts.Hook != nil {
		e.opts.Hook(Event{Scenario: e.name, Stage: stage, Path: path})
	}
}

// path joins names onto the scenario directory.
func (e *env) path(names ...string) string {
	return filepath.Join(append([]string{e.dir}, names...)...)
}

func scenarioSeed(base int64, name string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", base, name)
	return h.Sum64()
}

func runOne(ctx context.Context, root string, s Scenario, opts Options) (r Result) {
	start := time.Now()
	r.Name = s.Name
	e := &env{ctx: ctx, name: s.Name, root: root, opts: opts, seed: scenarioSeed(opts.Seed, s.Name)}
	e.rng = rand.New(rand.NewPCG(e.seed, e.seed^0x9e3779b97f4a7c15))
	e.note("seed=%d", opts.Seed)
	defer func() {
		if p := recover(); p != nil {
			r.OK, r.Error = false, fmt.Sprintf("panic: %v", p)
			e.note("left in place for diagnosis: %s", e.dir)
		}
		r.DurationMS = time.Since(start).Milliseconds()
		r.Details = e.details
	}()
	dir, err := os.MkdirTemp(root, s.Name+".")
	if err != nil {
		r.Error = fmt.Sprintf("cannot create scenario directory: %v", err)
		return r
	}
	e.dir = dir
	err = s.run(e)
	switch {
	case errors.Is(err, errSkip):
		r.OK, r.Skipped = true, true
		r.Error = ""
		e.note("%v", err)
	case err != nil:
		r.Error = err.Error()
		e.note("left in place for diagnosis: %s", dir)
		return r
	default:
		r.OK = true
	}
	if opts.Keep || s.Name == "write-fsync-record" {
		e.note("kept: %s", dir)
		return r
	}
	if err := os.RemoveAll(dir); err != nil {
		r.OK, r.Error = false, fmt.Sprintf("cannot clean up after success: %v", err)
	}
	return r
}
