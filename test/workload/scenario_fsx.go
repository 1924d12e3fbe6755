//go:build linux || darwin

package workload

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// fsx runs random operations on one file and checks every read against an in-memory model of the
// content, in the spirit of the classic fsx tool (without mmap).
type fsx struct {
	e       *env
	path    string
	f, fa   *os.File // fa is O_APPEND
	model   []byte
	op      int
	history []string
	counts  map[string]int
}

const fsxHistory = 12

func (x *fsx) log(format string, args ...any) {
	s := fmt.Sprintf("#%d ", x.op) + fmt.Sprintf(format, args...)
	if len(x.history) == fsxHistory {
		x.history = x.history[1:]
	}
	x.history = append(x.history, s)
}

func (x *fsx) fail(format string, args ...any) error {
	return fmt.Errorf("op %d: %s (size %d; recent ops: %s)", x.op, fmt.Sprintf(format, args...), len(x.model),
		strings.Join(x.history, "; "))
}

func (x *fsx) open() error {
	var err error
	if x.f, err = os.OpenFile(x.path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return err
	}
	if x.fa, err = os.OpenFile(x.path, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		x.f.Close()
		return err
	}
	return nil
}

func (x *fsx) close() error {
	err1 := x.f.Close()
	err2 := x.fa.Close()
	return errors.Join(err1, err2)
}

func (x *fsx) fullCheck() error {
	x.e.hook(StageWritten, x.path)
	got, err := os.ReadFile(x.path)
	if err != nil {
		return x.fail("full-file read: %v", err)
	}
	if d := mismatch(x.model, got, 0); d != "" {
		return x.fail("full-file check: %s", d)
	}
	return nil
}

func (x *fsx) step() error {
	rng := x.e.rng
	max := int(x.e.opts.FSXMaxSize)
	size := len(x.model)
	r := rng.IntN(100)
	switch {
	case r < 35:
		off := rng.IntN(size + size/8 + 1)
		n := 1 + rng.IntN(64<<10)
		x.log("read %d+%d", off, n)
		x.counts["read"]++
		got := make([]byte, n)
		k, err := x.f.ReadAt(got, int64(off))
		if err != nil && !errors.Is(err, io.EOF) {
			return x.fail("read %d+%d: %v", off, n, err)
		}
		var want []byte
		if off < size {
			want = x.model[off:min(off+n, size)]
		}
		if k < n && !errors.Is(err, io.EOF) {
			return x.fail("read %d+%d: short read of %d bytes without EOF", off, n, k)
		}
		if d := mismatch(want, got[:k], int64(off)); d != "" {
			return x.fail("read %d+%d: %s", off, n, d)
		}
	case r < 65:
		n := 1 + rng.IntN(min(64<<10, max))
		off := rng.IntN(max - n + 1)
		x.log("write %d+%d", off, n)
		x.counts["write"]++
		data := randomBytes(rng, n)
		if _, err := x.f.WriteAt(data, int64(off)); err != nil {
			return x.fail("write %d+%d: %v", off, n, err)
		}
		if end := off + n; end > size {
			x.model = append(x.model, make([]byte, end-size)...)
		}
		copy(x.model[off:], data)
	case r < 75:
		n := 1 + rng.IntN(16<<10)
		if size+n > max {
			return nil
		}
		x.log("append %d", n)
		x.counts["append"]++
		data := randomBytes(rng, n)
		if _, err := x.fa.Write(data); err != nil {
			return x.fail("append %d: %v", n, err)
		}
		x.model = append(x.model, data...)
	case r < 85:
		n := rng.IntN(max + 1)
		x.log("truncate %d", n)
		x.counts["truncate"]++
		if err := x.f.Truncate(int64(n)); err != nil {
			return x.fail("truncate %d: %v", n, err)
		}
		if n <= size {
			x.model = x.model[:n]
		} else {
			x.model = append(x.model, make([]byte, n-size)...)
		}
	case r < 90:
		x.log("fsync")
		x.counts["fsync"]++
		if err := x.f.Sync(); err != nil {
			return x.fail("fsync: %v", err)
		}
	case r < 95:
		x.log("reopen")
		x.counts["reopen"]++
		if err := x.close(); err != nil {
			return x.fail("close: %v", err)
		}
		if err := x.open(); err != nil {
			return x.fail("reopen: %v", err)
		}
	default:
		x.log("stat")
		x.counts["stat"]++
		st, err := x.f.Stat()
		if err != nil {
			return x.fail("fstat: %v", err)
		}
		if st.Size() != int64(size) {
			return x.fail("fstat size %d, want %d", st.Size(), size)
		}
	}
	return nil
}

func runFSX(e *env) error {
	x := &fsx{e: e, path: e.path("fsx"), counts: map[string]int{}}
	if err := x.open(); err != nil {
		return err
	}
	deadline := time.Now().Add(e.opts.FSXDuration)
	start := time.Now()
	var err error
	for ; ; x.op++ {
		if (e.opts.FSXMaxOps > 0 && x.op >= e.opts.FSXMaxOps) || e.ctx.Err() != nil ||
			(x.op%16 == 0 && time.Now().After(deadline)) {
			break
		}
		if err = x.step(); err != nil {
			break
		}
		if x.op%64 == 63 {
			if err = x.fullCheck(); err != nil {
				break
			}
		}
	}
	if cerr := x.close(); err == nil && cerr != nil {
		err = x.fail("close: %v", cerr)
	}
	if err == nil {
		err = x.fullCheck()
	}
	e.note("fsx: %d ops in %v, max size %d; counts %v", x.op, time.Since(start).Round(time.Millisecond), e.opts.FSXMaxSize, x.counts)
	e.note("reproduce with: -run '^fsx$' -seed %d -fsx-max-size %d", e.opts.Seed, e.opts.FSXMaxSize)
	return err
}
