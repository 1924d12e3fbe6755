// Package suite is `make bench`: it runs every benchmark of luksmount on this machine in one
// run (loopback NFS servers, handle and listing scale, and the three VM configurations on one
// LUKS2 + ext4 disk), prints one table and writes the same numbers as JSON.
package suite

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/bench/loopback"
	"github.com/luksmount/luksmount/bench/vmbench"
	"github.com/luksmount/luksmount/bench/workload"
	"github.com/luksmount/luksmount/test/libnfs"
)

// passphrase unlocks only the benchmark's throwaway disk image.
const passphrase = "luksmount bench passphrase"

// Options are the command-line knobs.
type Options struct {
	Root        string
	Out         string // build/bench
	Results     string // bench/results
	Runs        int
	DiskGiB     int
	Workload    workload.Config
	LoopMiB     int
	Depths      []int
	ScaleFiles  int
	ListFiles   int
	ScaleLimit  time.Duration
	Idle        time.Duration
	Only        map[string]bool // parts to run; empty = all
	Machine     vmbench.Machine
	ClientLimit time.Duration
}

// Report is everything measured; it is also the JSON file.
type Report struct {
	Date     string                       `json:"date"`
	Host     string                       `json:"host"`
	Settings map[string]any               `json:"settings"`
	Notes    []string                     `json:"notes"`
	Errors   []string                     `json:"errors,omitempty"`
	Images   map[string]int64             `json:"image_bytes,omitempty"`
	Latency  *Latency                     `json:"mount_latency,omitempty"`
	Through  map[string][]workload.Result `json:"throughput,omitempty"` // ours, nfsd, local
	Loop     []loopback.SeqResult         `json:"loopback_parallel,omitempty"`
	Foot     *vmbench.Footprint           `json:"footprint,omitempty"`
	NFSDMem  int64                        `json:"nfsd_guest_mem_used_kib,omitempty"`
	LocalMem int64                        `json:"local_guest_mem_used_kib,omitempty"`
	Scale    []loopback.ScaleResult       `json:"scale_getattr,omitempty"`
	List     []loopback.ListResult        `json:"scale_listing,omitempty"`
	Steps    map[string]float64           `json:"phase_seconds"`
}

// Latency is the mount latency of ours over several boots.
type Latency struct {
	Runs      [][]vmbench.Step   `json:"runs"`
	Totals    []float64          `json:"totals"`
	KDF       float64            `json:"kdf_seconds"`      // cryptsetup --test-passphrase in the nfsd guest
	NFSDSteps map[string]float64 `json:"nfsd_guest_steps"` // the nfsd guest's own unlock/mount/nfs steps
}

// Run is the luksmount-bench command line.
func Run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("luksmount-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Options{}
	fs.StringVar(&o.Root, "root", ".", "repository root")
	fs.IntVar(&o.Runs, "runs", 5, "mount-latency boots")
	fs.IntVar(&o.DiskGiB, "disk-gib", 4, "sparse LUKS2 disk image size")
	seqMiB := fs.Int("seq-mib", 256, "sequential file size in the VMs (MiB); 1024 is the issue's size but takes ~10 min per configuration under TCG")
	fs.IntVar(&o.Workload.SmallFiles, "files", 2000, "small files created/stat'ed/listed/removed in the VMs (10000 takes ~12 min per NFS configuration under TCG)")
	fs.IntVar(&o.Workload.RandReads, "rand-reads", 1000, "random 4 KiB reads in the VMs")
	fs.IntVar(&o.LoopMiB, "loop-mib", 1024, "sequential file size on loopback (MiB)")
	fs.IntVar(&o.ScaleFiles, "scale-files", 1000000, "files looked up for the flat-GETATTR check")
	fs.IntVar(&o.ListFiles, "list-files", 100000, "entries in the listed directory")
	fs.DurationVar(&o.ScaleLimit, "scale-limit", 90*time.Second, "time limit for each server's lookups in the scale part")
	fs.DurationVar(&o.Idle, "idle", 30*time.Second, "idle window for the CPU footprint")
	only := fs.String("only", "", "comma-separated parts to run: loopback,scale,ours,latency,nfsd,local (default all)")
	fs.IntVar(&o.Machine.MemoryMiB, "memory", 1024, "server VM memory (MiB), ours and nfsd alike")
	fs.IntVar(&o.Machine.CPUs, "cpus", 2, "server VM vCPUs, ours and nfsd alike")
	fs.DurationVar(&o.ClientLimit, "client-timeout", 12*time.Minute, "limit for one client VM workload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.Contains(",loopback,scale,ours,latency,nfsd,local,", ","+p+",") {
				return fmt.Errorf("unknown part %q in -only (want loopback, scale, ours, latency, nfsd or local)", p)
			}
			o.Only[p] = true
		}
	}
	o.Workload.SeqBytes = int64(*seqMiB) << 20
	o.Workload.ReqSize = 1 << 20
	o.Depths = []int{1, 8}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	o.Root = root
	o.Out = filepath.Join(root, "build", "bench")
	o.Results = filepath.Join(root, "bench", "results")
	rep, err := run(context.Background(), o, stderr)
	if rep == nil {
		return err
	}
	Print(stdout, rep)
	path, werr := write(o.Results, rep)
	if werr != nil {
		return werr
	}
	fmt.Fprintf(stdout, "\nwritten to %s\n", path)
	if err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d part(s) of the benchmark failed: %s", len(rep.Errors), strings.Join(rep.Errors, "; "))
	}
	return nil
}

func write(dir string, rep *Report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, rep.Date+".json")
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	return p, os.WriteFile(p, append(b, '\n'), 0o644)
}

func hostDesc() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ":")
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs,%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model)
}

func (o Options) want(part string) bool { return len(o.Only) == 0 || o.Only[part] }

func run(ctx context.Context, o Options, log io.Writer) (*Report, error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	rep := &Report{
		Date: time.Now().Format("2006-01-02T150405"), Host: hostDesc(), Steps: map[string]float64{},
		Through: map[string][]workload.Result{},
		Settings: map[string]any{
			"runs": o.Runs, "disk_gib": o.DiskGiB, "workload": o.Workload.WithDefaults(), "loop_bytes": int64(o.LoopMiB) << 20,
			"depths": o.Depths, "scale_files": o.ScaleFiles, "list_files": o.ListFiles, "idle_seconds": o.Idle.Seconds(),
			"server_vm": o.Machine, "kdf": vmbench.KDF,
		},
		Notes: []string{
			"ours reaches the guest through gvproxy (in-process, host/vnet) on a 127.0.0.1 forward; nfsd through QEMU user networking (slirp) hostfwd on 127.0.0.1; the client VM reaches both through its own slirp as 10.0.2.2",
			"nfsd exports with sync (rw,sync,no_root_squash,insecure,no_subtree_check): acknowledged means on disk, as ours promises; NFSv3 over TCP, 8 nfsd threads",
			"both server VMs: q35, TCG, same vCPUs and memory, virtio-blk with the host page cache and guest flushes honoured",
			"reads: the reading guest drops its caches first (client VM for ours/nfsd, the server guest for local); the server guest's page cache is NOT dropped for ours/nfsd",
			"loopback: host page cache warm; stock go-nfs acknowledges WRITE as FILE_SYNC without fsync and COMMIT is a no-op, so its write numbers do no durability work that ours does",
			"rates: MB/s is 10^6 bytes/s; ratios > 1 mean ours is faster",
		},
	}
	phase := func(name string, fn func() error) {
		t := time.Now()
		logf("%s ...", name)
		err := fn()
		rep.Steps[name] = time.Since(t).Seconds()
		if err != nil {
			logf("%s FAILED after %.1fs: %v", name, time.Since(t).Seconds(), err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", name, err))
			return
		}
		logf("%s done in %.1fs", name, time.Since(t).Seconds())
	}
	tmp := filepath.Join(o.Out, "tmp")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	if o.want("loopback") {
		phase("loopback parallel", func() error {
			r, err := loopback.Parallel(ctx, loopback.ParallelConfig{Dir: tmp, Size: int64(o.LoopMiB) << 20, Req: 1 << 20, Depths: o.Depths})
			rep.Loop = r
			return err
		})
	}
	if o.want("scale") {
		phase("scale", func() error { return scale(ctx, o, tmp, rep, logf) })
	}
	if o.want("ours") || o.want("latency") || o.want("nfsd") || o.want("local") {
		vms(ctx, o, rep, logf, phase)
	}
	rep.Steps["total"] = time.Since(start).Seconds()
	return rep, nil
}

func scale(ctx context.Context, o Options, tmp string, rep *Report, logf func(string, ...any)) error {
	per := o.ListFiles
	dirs := (o.ScaleFiles + per - 1) / per
	root := filepath.Join(tmp, "scale")
	t := time.Now()
	if err := loopback.Populate(root, dirs, per); err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	logf("  %d files in %d directories made in %.1fs", dirs*per, dirs, time.Since(t).Seconds())
	starts := []func() (*loopback.Server, error){
		func() (*loopback.Server, error) { return loopback.StartStock(root, o.ScaleFiles+1000) },
		func() (*loopback.Server, error) { return loopback.StartOurs(root) },
	}
	for _, start := range starts {
		for _, n := range []int{1000, o.ScaleFiles} {
			s, err := start()
			if err != nil {
				return err
			}
			r, err := loopback.Scale(s, n, per, 2000, o.ScaleLimit)
			if err == nil {
				logf("  %s: %d of %d lookups in %.1fs, GETATTR p50 %.0fus", s.Name, r.LookedUp, n, r.LookupS, r.P50us)
				rep.Scale = append(rep.Scale, r)
			}
			if n == o.ScaleFiles && err == nil {
				var l loopback.ListResult
				l, err = loopback.List(s, "d0", per, o.ScaleLimit)
				if err != nil {
					// A listing that does not finish is a result, not a reason to stop.
					rep.List = append(rep.List, loopback.ListResult{Server: s.Name + ": " + err.Error()})
					err = nil
				} else {
					rep.List = append(rep.List, l)
					// libnfs's nfs-ls: a client we did not write (READDIRPLUS, then its own output).
					t := time.Now()
					lctx, cancel := context.WithTimeout(ctx, o.ScaleLimit)
					names, lerr := libnfs.Client{Addr: s.Addr, Export: "/"}.Ls(lctx, "d0")
					cancel()
					if lerr == nil && len(names) != per {
						lerr = fmt.Errorf("nfs-ls listed %d entries, want %d", len(names), per)
					}
					if lerr != nil {
						rep.List = append(rep.List, loopback.ListResult{Server: s.Name + " (nfs-ls): " + firstLine(lerr.Error())})
					} else {
						rep.List = append(rep.List, loopback.ListResult{Server: s.Name + " (nfs-ls)", Entries: len(names), Seconds: time.Since(t).Seconds()})
					}
				}
			}
			s.Close()
			if err != nil {
				return fmt.Errorf("%s %d: %w", s.Name, n, err)
			}
		}
	}
	return nil
}

func vms(ctx context.Context, o Options, rep *Report, logf func(string, ...any), phase func(string, func() error)) {
	var im vmbench.Images
	var ok bool
	phase("build bench images", func() error {
		var err error
		im, err = vmbench.BuildImages(ctx, o.Root, o.Out, runtime.GOARCH, logf)
		ok = err == nil
		return err
	})
	if !ok {
		return
	}
	rep.Images = im.Sizes()
	disk := filepath.Join(o.Out, "disk.img")
	pass := []byte(passphrase)
	ok = false
	phase("format disk (agent: LUKS2 argon2id + ext4)", func() error {
		os.Remove(disk)
		f, err := os.Create(disk)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(o.DiskGiB) << 30)
		f.Close()
		if err != nil {
			return err
		}
		err = vmbench.FormatDisk(ctx, im, disk, o.Machine, pass, logf)
		ok = err == nil
		return err
	})
	if !ok {
		return
	}
	defer os.Remove(disk)
	lat := &Latency{NFSDSteps: map[string]float64{}}
	rep.Latency = lat
	if o.want("ours") {
		phase("ours: boot, footprint, client VM workload", func() error {
			s, err := vmbench.BootOurs(ctx, im, disk, o.Machine, pass, logf)
			if err != nil {
				return err
			}
			lat.Runs = append(lat.Runs, s.Steps)
			lat.Totals = append(lat.Totals, s.Total)
			f, err := s.Footprint(ctx, o.Idle)
			if err == nil {
				rep.Foot = &f
				_, port := splitPort(s.VM.NFSAddr())
				var lines vmbench.Lines
				lines, err = vmbench.ClientRun(ctx, im, filepath.Join(o.Out, "client-ours"), "/", port, port, o.Workload, o.ClientLimit)
				rep.Through["ours"] = lines.Results()
			}
			if serr := s.Stop(ctx); serr != nil && err == nil {
				err = fmt.Errorf("shutdown: %w", serr)
			}
			return err
		})
	}
	if o.want("latency") {
		phase("ours: mount latency boots", func() error {
			for i := len(lat.Runs); i < o.Runs; i++ {
				s, err := vmbench.BootOurs(ctx, im, disk, o.Machine, pass, logf)
				if err != nil {
					return err
				}
				lat.Runs = append(lat.Runs, s.Steps)
				lat.Totals = append(lat.Totals, s.Total)
				logf("  run %d: client mounted %.2fs after QEMU start", i+1, s.Total)
				if err := s.Stop(ctx); err != nil {
					return fmt.Errorf("shutdown: %w", err)
				}
			}
			return nil
		})
	}
	if o.want("nfsd") {
		phase("nfsd: kernel nfsd guest + client VM workload", func() error {
			n, err := vmbench.StartNFSDBooted(ctx, im, disk, filepath.Join(o.Out, "nfsd"), o.Machine, pass, guestspec.ModeNFSD, o.Workload, logf)
			if err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			ready, err := n.WaitReady(rctx)
			cancel()
			if err == nil {
				rep.NFSDMem = ready.MemUsedKiB
				var lines vmbench.Lines
				lines, err = vmbench.ClientRun(ctx, im, filepath.Join(o.Out, "client-nfsd"), vmbench.NFSDExport, n.NFSPort, n.MountPort, o.Workload, o.ClientLimit)
				rep.Through["nfsd"] = lines.Results()
			}
			lines, serr := n.Stop(ctx)
			for _, s := range []string{"kdf", "unlock", "mount", "network", "nfs", "modules"} {
				lat.NFSDSteps[s] = lines.Step(s)
			}
			lat.KDF = lines.Step("kdf")
			if serr != nil && err == nil {
				err = serr
			}
			return err
		})
	}
	if o.want("local") {
		phase("local: workload inside the nfsd guest on the mount", func() error {
			n, err := vmbench.StartNFSDBooted(ctx, im, disk, filepath.Join(o.Out, "local"), o.Machine, pass, guestspec.ModeLocal, o.Workload, logf)
			if err != nil {
				return err
			}
			lctx, cancel := context.WithTimeout(ctx, o.ClientLimit)
			defer cancel()
			lines, err := n.Wait(lctx)
			rep.Through["local"] = lines.Results()
			for _, l := range lines {
				if l.Kind == "ready" {
					rep.LocalMem = l.MemUsedKiB
				}
			}
			return err
		})
	}
}

func splitPort(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	var p int
	fmt.Sscan(addr[i+1:], &p)
	return addr[:i], p
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
