//go:build linux || darwin

package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// ErrFailed is returned by Main when at least one scenario failed.
var ErrFailed = errors.New("scenarios failed")

// ErrUsage is returned by Main for bad flags or arguments.
var ErrUsage = errors.New("usage")

// ExitCode maps Main's error to the runner's exit status: 0 all passed, 1 a scenario failed, 2 usage or
// setup error.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrFailed):
		return 1
	default:
		return 2
	}
}

// Main is the luksmount-workload runner. With -json, stdout holds one JSON Result per scenario and then
// the summary line "N passed, N failed, N skipped"; progress and the seed go to stderr.
func Main(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("luksmount-workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir      = fs.String("dir", "", "directory to run the scenarios in (required), e.g. the NFS mount point")
		run      = fs.String("run", ".", "regexp selecting scenarios by name")
		asJSON   = fs.Bool("json", false, "print one JSON object per scenario, then the summary line")
		list     = fs.Bool("list", false, "list the scenarios and exit")
		outside  = fs.String("outside", "", "directory outside -dir for the symlink sentinel check")
		manifest = fs.String("manifest", "", "manifest path outside -dir for write-fsync-record and verify-manifest")
		files    = fs.Int("files", 10000, "file count of many-files")
		writers  = fs.Int("writers", 8, "goroutines in concurrent-writers")
		fsxDur   = fs.Duration("fsx-duration", 20*time.Second, "how long fsx runs")
		fsxOps   = fs.Int("fsx-ops", 0, "stop fsx after this many operations (0: duration only)")
		fsxMax   = fs.Int64("fsx-max-size", 256<<10, "largest file fsx makes, in bytes")
		sparse   = fs.Int64("sparse-offset", 5<<30, "offset of the sparse scenario's data, in bytes")
		seed     = fs.Int64("seed", 0, "random seed (0: pick one; it is printed)")
		nfs      = fs.Bool("nfs", false, "apply the NFS relaxations even if the mount is not detected as NFS")
		keep     = fs.Bool("keep", false, "keep scenario directories after success")
		timeout  = fs.Duration("timeout", 10*time.Minute, "fail and exit if one scenario runs longer than this (fsx: plus -fsx-duration); 0: no limit")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if *list {
		for _, s := range Scenarios() {
			fmt.Fprintf(stdout, "%-20s %s\n", s.Name, s.Doc)
		}
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q; pass the directory with -dir", ErrUsage, fs.Arg(0))
	}
	if *dir == "" {
		return fmt.Errorf("%w: -dir is required (the directory to test, e.g. -dir /mnt/nfs)", ErrUsage)
	}
	filter, err := regexp.Compile(*run)
	if err != nil {
		return fmt.Errorf("%w: bad -run regexp %q: %v", ErrUsage, *run, err)
	}
	if *manifest != "" && inside(*dir, *manifest) {
		return fmt.Errorf("%w: -manifest %s is inside -dir %s; it must survive the volume, put it outside", ErrUsage, *manifest, *dir)
	}
	if *outside != "" && (inside(*dir, *outside) || inside(*outside, *dir)) {
		return fmt.Errorf("%w: -outside %s overlaps -dir %s; give a directory outside it", ErrUsage, *outside, *dir)
	}
	opts := Options{
		Outside: *outside, Manifest: *manifest, Files: *files, Writers: *writers,
		FSXDuration: *fsxDur, FSXMaxOps: *fsxOps, FSXMaxSize: *fsxMax, SparseOffset: *sparse,
		Seed: *seed, NFS: *nfs, Keep: *keep, Hook: testHook,
	}.withDefaults()
	fmt.Fprintf(stderr, "luksmount-workload: dir %s, seed %d, nfs %v (uid %d)\n", *dir, opts.Seed, opts.NFS || isNFS(*dir), os.Geteuid())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := &reporter{out: stdout, json: *asJSON}
	var order []string
	for _, s := range Scenarios() {
		if filter.MatchString(s.Name) {
			order = append(order, s.Name)
		}
	}
	if *timeout > 0 {
		done := make(chan struct{})
		defer close(done)
		go rep.watch(done, order, *timeout, opts.FSXDuration, stderr)
	}
	_, err = Run(ctx, *dir, filter, opts, rep.result)
	passed, failed, skipped := rep.summary()
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d (seed %d)", ErrFailed, failed, passed+failed+skipped, opts.Seed)
	}
	return nil
}

// reporter prints results as they come; the watchdog shares it, hence the lock.
type reporter struct {
	mu                      sync.Mutex
	out                     io.Writer
	json                    bool
	done                    int // results printed
	since                   time.Time
	passed, failed, skipped int
}

func (p *reporter) result(r Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print(r)
}

func (p *reporter) print(r Result) {
	p.done++
	p.since = time.Now()
	switch {
	case r.Skipped:
		p.skipped++
	case r.OK:
		p.passed++
	default:
		p.failed++
	}
	if p.json {
		enc := json.NewEncoder(p.out)
		enc.SetEscapeHTML(false)
		enc.Encode(r)
		return
	}
	status := "ok  "
	switch {
	case r.Skipped:
		status = "skip"
	case !r.OK:
		status = "FAIL"
	}
	fmt.Fprintf(p.out, "%s %-20s %6dms %s\n", status, r.Name, r.DurationMS, r.Error)
	for _, d := range r.Details {
		fmt.Fprintf(p.out, "     %q\n", d)
	}
}

func (p *reporter) summary() (passed, failed, skipped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%d passed, %d failed, %d skipped\n", p.passed, p.failed, p.skipped)
	return p.passed, p.failed, p.skipped
}

// exit and testHook are replaced in tests.
var (
	exit     = os.Exit
	testHook func(Event)
)

// watch ends the run when a scenario takes longer than limit (fsx: limit plus its duration): a hung
// mount would otherwise hang the harness without saying where. It reports the scenario as failed, prints
// the summary and every goroutine's stack (to stderr), and exits 1.
func (p *reporter) watch(done <-chan struct{}, order []string, limit, fsx time.Duration, stderr io.Writer) {
	p.mu.Lock()
	p.since = time.Now()
	p.mu.Unlock()
	tick := time.NewTicker(limit/20 + time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		if p.done >= len(order) {
			p.mu.Unlock()
			return
		}
		name, max := order[p.done], limit
		if name == "fsx" {
			max += fsx
		}
		if took := time.Since(p.since); took > max {
			p.print(Result{Name: name, DurationMS: took.Milliseconds(),
				Error: fmt.Sprintf("timed out after %v (-timeout %v): a filesystem call is probably hung; stacks on stderr", took.Round(time.Second), limit)})
			fmt.Fprintf(p.out, "%d passed, %d failed, %d skipped\n", p.passed, p.failed, p.skipped)
			buf := make([]byte, 1<<20)
			fmt.Fprintf(stderr, "luksmount-workload: %s timed out; goroutines:\n%s\n", name, buf[:runtime.Stack(buf, true)])
			p.mu.Unlock()
			exit(1)
			return
		}
		p.mu.Unlock()
	}
}

// Report is the runner's parsed -json output.
type Report struct {
	Results                 []Result
	Passed, Failed, Skipped int
}

var summaryRE = regexp.MustCompile(`^(\d+) passed, (\d+) failed, (\d+) skipped$`)

// ParseReport reads the runner's -json stdout, for harnesses. It fails if the summary line is missing
// (the runner died) or disagrees with the results.
func ParseReport(r io.Reader) (Report, error) {
	var rep Report
	b, err := io.ReadAll(r)
	if err != nil {
		return rep, err
	}
	sawSummary := false
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == '{' {
			var res Result
			if err := json.Unmarshal(line, &res); err != nil {
				return rep, fmt.Errorf("bad result line %q: %w", line, err)
			}
			rep.Results = append(rep.Results, res)
			continue
		}
		m := summaryRE.FindSubmatch(line)
		if m == nil {
			return rep, fmt.Errorf("unexpected output line %q", line)
		}
		fmt.Sscan(string(m[1]), &rep.Passed)
		fmt.Sscan(string(m[2]), &rep.Failed)
		fmt.Sscan(string(m[3]), &rep.Skipped)
		sawSummary = true
	}
	if !sawSummary {
		return rep, errors.New("no summary line: the runner did not finish")
	}
	var p, f, s int
	for _, res := range rep.Results {
		switch {
		case res.Skipped:
			s++
		case res.OK:
			p++
		default:
			f++
		}
	}
	if p != rep.Passed || f != rep.Failed || s != rep.Skipped {
		return rep, fmt.Errorf("summary says %d/%d/%d passed/failed/skipped but the results say %d/%d/%d",
			rep.Passed, rep.Failed, rep.Skipped, p, f, s)
	}
	return rep, nil
}
