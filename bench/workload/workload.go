// Package workload is the benchmark workload: the same code runs in the NFS client VM (on the
// kernel NFS mount) and in the server guest directly on the mounted filesystem, so the numbers of
// the three configurations compare like with like. Every step checks what it did (sizes, counts,
// read-back content) so a broken filesystem cannot produce a fast, wrong number.
package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// Config sizes the workload. Zero fields take the defaults of the issue.
type Config struct {
	SeqBytes   int64 `json:"seq_bytes"`   // sequential file size (1 GiB)
	ReqSize    int   `json:"req_size"`    // sequential request size (1 MiB)
	RandReads  int   `json:"rand_reads"`  // number of random 4 KiB reads (2000)
	SmallFiles int   `json:"small_files"` // files created, stat'ed, listed and removed (10000)
	Seed       int64 `json:"seed"`
	// Only, if non-empty, limits the run to these step names.
	Only []string `json:"only,omitempty"`
}

// Step names, in the order they run.
const (
	SeqWrite  = "seq-write"
	SeqRead   = "seq-read"
	RandRead  = "rand-read-4k"
	Create    = "create"
	Stat      = "stat"
	ListLong  = "ls-l"
	Remove    = "remove"
	randBlock = 4096
)

// Steps lists the step names in run order.
var Steps = []string{SeqWrite, SeqRead, RandRead, Create, Stat, ListLong, Remove}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.SeqBytes <= 0 {
		c.SeqBytes = 1 << 30
	}
	if c.ReqSize <= 0 {
		c.ReqSize = 1 << 20
	}
	if c.RandReads <= 0 {
		c.RandReads = 2000
	}
	if c.SmallFiles <= 0 {
		c.SmallFiles = 10000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Result is one measured step.
type Result struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes,omitempty"`
	Ops     int     `json:"ops"`
	// Rate is MB/s (10^6 bytes) for byte steps, operations per second otherwise.
	Rate float64 `json:"rate"`
	Unit string  `json:"unit"`
}

func (r Result) String() string {
	return fmt.Sprintf("%s %.1f %s (%d ops in %.2fs)", r.Step, r.Rate, r.Unit, r.Ops, r.Seconds)
}

// Env is what differs between where the workload runs.
type Env struct {
	// DropCaches empties the page cache of the machine running the workload before each read
	// step (nil: nothing to drop, e.g. unit tests).
	DropCaches func() error
	// Report is called after each step (may be nil).
	Report func(Result)
}

// Run runs the workload in a fresh subdirectory of dir and removes it afterwards.
func Run(ctx context.Context, dir string, c Config, env Env) ([]Result, error) {
	c = c.WithDefaults()
	work, err := os.MkdirTemp(dir, "lmbench-")
	if err != nil {
		return nil, fmt.Errorf("cannot make work directory in %s: %w", dir, err)
	}
	r := &runner{c: c, env: env, dir: work, big: filepath.Join(work, "seq.bin"), small: filepath.Join(work, "small")}
	var out []Result
	steps := []struct {
		name string
		fn   func() (Result, error)
	}{
		{SeqWrite, r.seqWrite}, {SeqRead, r.seqRead}, {RandRead, r.randRead},
		{Create, r.create}, {Stat, r.stat}, {ListLong, r.listLong}, {Remove, r.remove},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if !c.want(s.name) {
			continue
		}
		res, err := s.fn()
		if err != nil {
			return out, fmt.Errorf("%s: %w", s.name, err)
		}
		res.Step = s.name
		if res.Bytes > 0 {
			res.Rate, res.Unit = float64(res.Bytes)/1e6/res.Seconds, "MB/s"
		} else {
			res.Rate, res.Unit = float64(res.Ops)/res.Seconds, "ops/s"
		}
		out = append(out, res)
		if env.Report != nil {
			env.Report(res)
		}
	}
	if err := os.RemoveAll(work); err != nil {
		return out, fmt.Errorf("cannot remove %s: %w", work, err)
	}
	return out, nil
}

func (c Config) want(step string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, s := range c.Only {
		if s == step {
			return true
		}
	}
	// Later steps need the files earlier ones make.
	switch step {
	case SeqWrite:
		return c.want(SeqRead) || c.want(RandRead)
	case Create:
		return c.want(Stat) || c.want(ListLong) || c.want(Remove)
	}
	return false
}

type runner struct {
	c          Config
	env        Env
	dir        string
	big, small string
	written    bool
	created    bool
}

func (r *runner) drop() error {
	if r.env.DropCaches == nil {
		return nil
	}
	if err := r.env.DropCaches(); err != nil {
		return fmt.Errorf("cannot drop caches: %w", err)
	}
	return nil
}

// block returns the content of request i: cheap to make, different per request, so a server
// that mixes up offsets is caught by the read check.
func block(buf []byte, i int64) {
	for j := 0; j+8 <= len(buf); j += 512 {
		v := uint64(i+1)<<32 | uint64(j) // +1: never all zeros
		for k := 0; k < 8; k++ {
			buf[j+k] = byte(v >> (8 * k))
		}
	}
}

func (r *runner) seqWrite() (Result, error) {
	buf := make([]byte, r.c.ReqSize)
	t := time.Now()
	f, err := os.OpenFile(r.big, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return Result{}, err
	}
	var n int64
	for i := int64(0); n < r.c.SeqBytes; i++ {
		chunk := buf[:min(int64(len(buf)), r.c.SeqBytes-n)]
		block(chunk, i)
		w, err := f.Write(chunk)
		n += int64(w)
		if err != nil {
			f.Close()
			return Result{}, err
		}
	}
	// Durable before the clock stops: the same promise every configuration must keep.
	if err := f.Sync(); err != nil {
		f.Close()
		return Result{}, fmt.Errorf("fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return Result{}, err
	}
	r.written = true
	return Result{Seconds: time.Since(t).Seconds(), Bytes: n, Ops: int((n + int64(r.c.ReqSize) - 1) / int64(r.c.ReqSize))}, nil
}

func (r *runner) seqRead() (Result, error) {
	if err := r.drop(); err != nil {
		return Result{}, err
	}
	buf := make([]byte, r.c.ReqSize)
	want := make([]byte, r.c.ReqSize)
	t := time.Now()
	f, err := os.Open(r.big)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	var n int64
	ops := 0
	for i := int64(0); ; i++ {
		m, err := io.ReadFull(f, buf)
		if m > 0 {
			ops++
			block(want[:m], i)
			if !bytes.Equal(buf[:m], want[:m]) {
				return Result{}, fmt.Errorf("content differs in request %d (offset %d)", i, n)
			}
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return Result{}, err
		}
	}
	if n != r.c.SeqBytes {
		return Result{}, fmt.Errorf("read %d bytes, wrote %d", n, r.c.SeqBytes)
	}
	return Result{Seconds: time.Since(t).Seconds(), Bytes: n, Ops: ops}, nil
}

func (r *runner) randRead() (Result, error) {
	if err := r.drop(); err != nil {
		return Result{}, err
	}
	rng := rand.New(rand.NewPCG(uint64(r.c.Seed), 4096))
	blocks := r.c.SeqBytes / randBlock
	if blocks == 0 {
		return Result{}, errors.New("sequential file smaller than one block")
	}
	buf := make([]byte, randBlock)
	t := time.Now()
	f, err := os.Open(r.big)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	for i := 0; i < r.c.RandReads; i++ {
		off := rng.Int64N(blocks) * randBlock
		if _, err := f.ReadAt(buf, off); err != nil {
			return Result{}, fmt.Errorf("read at %d: %w", off, err)
		}
		// Every block starts with the stamp of its request and offset (see block).
		if r.c.ReqSize%512 == 0 {
			req, in := off/int64(r.c.ReqSize), off%int64(r.c.ReqSize)
			v := uint64(req+1)<<32 | uint64(in)
			for k := 0; k < 8; k++ {
				if buf[k] != byte(v>>(8*k)) {
					return Result{}, fmt.Errorf("content differs at offset %d", off)
				}
			}
		}
	}
	return Result{Seconds: time.Since(t).Seconds(), Ops: r.c.RandReads}, nil
}

func (r *runner) name(i int) string { return filepath.Join(r.small, fmt.Sprintf("f%06d", i)) }

func (r *runner) create() (Result, error) {
	t := time.Now()
	if err := os.Mkdir(r.small, 0o755); err != nil {
		return Result{}, err
	}
	for i := 0; i < r.c.SmallFiles; i++ {
		f, err := os.OpenFile(r.name(i), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return Result{}, err
		}
		if err := f.Close(); err != nil {
			return Result{}, err
		}
	}
	r.created = true
	return Result{Seconds: time.Since(t).Seconds(), Ops: r.c.SmallFiles}, nil
}

func (r *runner) stat() (Result, error) {
	if err := r.drop(); err != nil {
		return Result{}, err
	}
	t := time.Now()
	for i := 0; i < r.c.SmallFiles; i++ {
		st, err := os.Lstat(r.name(i))
		if err != nil {
			return Result{}, err
		}
		if !st.Mode().IsRegular() || st.Size() != 0 {
			return Result{}, fmt.Errorf("%s: mode %v size %d, want an empty regular file", st.Name(), st.Mode(), st.Size())
		}
	}
	return Result{Seconds: time.Since(t).Seconds(), Ops: r.c.SmallFiles}, nil
}

// listLong is `ls -l`: read the directory, then lstat every entry.
func (r *runner) listLong() (Result, error) {
	if err := r.drop(); err != nil {
		return Result{}, err
	}
	t := time.Now()
	d, err := os.Open(r.small)
	if err != nil {
		return Result{}, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return Result{}, err
	}
	if len(names) != r.c.SmallFiles {
		return Result{}, fmt.Errorf("listed %d entries, created %d", len(names), r.c.SmallFiles)
	}
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(r.small, n)); err != nil {
			return Result{}, err
		}
	}
	return Result{Seconds: time.Since(t).Seconds(), Ops: len(names)}, nil
}

func (r *runner) remove() (Result, error) {
	t := time.Now()
	for i := 0; i < r.c.SmallFiles; i++ {
		if err := os.Remove(r.name(i)); err != nil {
			return Result{}, err
		}
	}
	if err := os.Remove(r.small); err != nil {
		return Result{}, fmt.Errorf("directory not empty after removing every file: %w", err)
	}
	return Result{Seconds: time.Since(t).Seconds(), Ops: r.c.SmallFiles}, nil
}
