// Package suite is `make bench`: it runs every benchmark of luksmount on this machine in one
// run (loopback NFS servers, handle and listing scale, and the three VM configurations on one
// LUKS2 + ext4 disk), prints one table and writes the same numbers as JSON.
package suite

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/bench/loopback"
	"github.com/luksmount/luksmount/bench/vmbench"
	"github.com/luksmount/luksmount/bench/workload"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/supervisor"
	"github.com/luksmount/luksmount/host/vnet"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/test/libnfs"
)

// parts are the -only names, in run order.
var parts = []string{"net", "ours", "nfsd", "ours-user", "nfsd-user", "local", "latency", "loopback", "scale"}

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
	NetBytes    int64
	MTUs        []int
	NetAll      bool // batched and user-net rows at every MTU, not only the default
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
	Through  map[string][]workload.Result `json:"throughput,omitempty"` // by configuration: see the config* names
	Net      []vmbench.StreamResult       `json:"network_path,omitempty"`
	Unlock   *Unlock                      `json:"unlock,omitempty"`
	Profiles []string                     `json:"profiles,omitempty"`
	Loop     []loopback.SeqResult         `json:"loopback_parallel,omitempty"`
	Foot     *vmbench.Footprint           `json:"footprint,omitempty"`
	NFSDMem  int64                        `json:"nfsd_guest_mem_used_kib,omitempty"`
	LocalMem int64                        `json:"local_guest_mem_used_kib,omitempty"`
	Scale    []loopback.ScaleResult       `json:"scale_getattr,omitempty"`
	List     []loopback.ListResult        `json:"scale_listing,omitempty"`
	Steps    map[string]float64           `json:"phase_seconds"`
	Workload workload.Config              `json:"workload"`
	// LoadStart and LoadEnd are /proc/loadavg's 1/5/15-minute figures: the machine is shared.
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
}

// The throughput configurations: server x path. Every one is driven by the same client VM,
// through its own QEMU user network to the host's 127.0.0.1.
const (
	configOursVnet = "ours vnet"
	configNFSDVnet = "nfsd vnet"
	configOursUser = "ours user"
	configNFSDUser = "nfsd user"
	configLocal    = "local"
)

// Unlock is 10.4's row: our unlock next to cryptsetup's own figures in the same guest.
type Unlock struct {
	Keyslot       string  `json:"keyslot"` // the bench disk's keyslot KDF, from its header
	Lanes         int     `json:"lanes"`
	VCPUs         int     `json:"vcpus"`           // the server VMs' vCPUs (product sizing: one per lane, capped at the host's cores)
	SizedMemory   int     `json:"sized_memory"`    // what the product would give this keyslot (MiB)
	OursUnlock    float64 `json:"ours_unlock"`     // the agent's unlock request, median of the boots
	TestPass      float64 `json:"test_passphrase"` // cryptsetup open --test-passphrase in the nfsd guest
	BenchLine     string  `json:"cryptsetup_benchmark"`
	BenchEstimate float64 `json:"cryptsetup_benchmark_estimate"` // seconds for the keyslot's cost, from BenchLine
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
	fs.IntVar(&o.Runs, "runs", 3, "mount-latency boots (ours over vnet)")
	fs.IntVar(&o.DiskGiB, "disk-gib", 4, "sparse LUKS2 disk image size")
	seqMiB := fs.Int("seq-mib", 128, "sequential file size in the VMs (MiB); -full = 1024, the issue's size")
	fs.IntVar(&o.Workload.SmallFiles, "files", 1000, "small files created/stat'ed/listed/removed in the VMs; -full = 10000 (2000 took ~5 min per NFS configuration under TCG on a loaded host)")
	fs.IntVar(&o.Workload.RandReads, "rand-reads", 1000, "random 4 KiB reads in the VMs")
	fs.IntVar(&o.LoopMiB, "loop-mib", 512, "sequential file size on loopback (MiB; 1024 took 115 s under load for the same ratios)")
	fs.IntVar(&o.ScaleFiles, "scale-files", 200000, "files looked up for the flat-GETATTR check (-full = 1000000)")
	fs.IntVar(&o.ListFiles, "list-files", 50000, "entries in the listed directory (-full = 100000)")
	fs.DurationVar(&o.ScaleLimit, "scale-limit", 45*time.Second, "time limit for each server's lookups in the scale part (stock go-nfs reaches ~30k of 200k in 90 s: the row reports how far it got)")
	fs.DurationVar(&o.Idle, "idle", 60*time.Second, "idle window for the CPU footprint of a mounted session")
	only := fs.String("only", "", "comma-separated parts to run: "+strings.Join(parts, ",")+" (default all)")
	printFile := fs.String("print", "", "print the table of a saved report (bench/results/DATE.json) and exit")
	full := fs.Bool("full", false, "the issue's sizes: -seq-mib 1024 -files 10000 -scale-files 1000000 -list-files 100000 (hours under TCG)")
	fs.IntVar(&o.Machine.MemoryMiB, "memory", 1024, "server VM memory (MiB), ours and nfsd alike")
	fs.IntVar(&o.Machine.CPUs, "cpus", 0, "server VM vCPUs, ours and nfsd alike (0 = as the product sizes the bench disk's keyslot)")
	netMiB := fs.Int("net-mib", 64, "bytes streamed each way per network-path row (MiB)")
	mtus := fs.String("mtus", "1500,9000,65520", "link MTUs of the network-path rows")
	fs.BoolVar(&o.NetAll, "net-all", false, "network path: batched vnet and user net at every -mtus value too (default: at vnet's default MTU only)")
	fs.DurationVar(&o.ClientLimit, "client-timeout", 12*time.Minute, "limit for one client VM workload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !slices.Contains(parts, p) {
				return fmt.Errorf("unknown part %q in -only (want one of %s)", p, strings.Join(parts, ", "))
			}
			o.Only[p] = true
		}
	}
	for _, m := range strings.Split(*mtus, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(m))
		if err != nil || v < 576 || v > vnet.MaxMTU {
			return fmt.Errorf("bad MTU %q in -mtus (want 576-%d)", m, vnet.MaxMTU)
		}
		o.MTUs = append(o.MTUs, v)
	}
	o.NetBytes = int64(*netMiB) << 20
	if *full {
		*seqMiB, o.Workload.SmallFiles, o.ScaleFiles, o.ListFiles = 1024, 10000, 1000000, 100000
		o.NetAll = true
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
	if *printFile != "" {
		b, err := os.ReadFile(*printFile)
		if err != nil {
			return err
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", *printFile, err)
		}
		Print(stdout, &rep)
		return nil
	}
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

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
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
		Date: time.Now().Format("2006-01-02T150405"), Host: hostDesc(), Steps: map[string]float64{}, LoadStart: loadAvg(),
		Through: map[string][]workload.Result{}, Workload: o.Workload.WithDefaults(),
		Settings: map[string]any{
			"runs": o.Runs, "disk_gib": o.DiskGiB, "workload": o.Workload.WithDefaults(), "loop_bytes": int64(o.LoopMiB) << 20,
			"depths": o.Depths, "scale_files": o.ScaleFiles, "list_files": o.ListFiles, "idle_seconds": o.Idle.Seconds(),
			"server_vm": o.Machine, "kdf": vmbench.KDF, "mtus": o.MTUs, "net_all": o.NetAll, "net_bytes": o.NetBytes, "vnet_default_mtu": vnet.DefaultMTU,
		},
		Notes: []string{
			"one run on a 2-core host SHARED with other developers' VMs (load varies during the run): compare ratios within the run, not absolute figures",
			"paths: vnet = gvproxy in the bench process (host/vnet, as the product) with a 127.0.0.1 forward; user = QEMU user networking (slirp) with hostfwd on 127.0.0.1; ours and nfsd run behind each at the same MTU; the client VM reaches every server through its own slirp as 10.0.2.2",
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
		} else {
			logf("%s done in %.1fs", name, time.Since(t).Seconds())
		}
		// What is measured so far survives a run cut short (build.sh's timeout, ^C): render it
		// with -print.
		if p, err := write(o.Results, rep); err == nil {
			logf("  so far: %s", p)
		}
	}
	tmp := filepath.Join(o.Out, "tmp")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	if o.want("net") || o.want("ours") || o.want("latency") || o.want("nfsd") || o.want("local") || o.want("ours-user") || o.want("nfsd-user") {
		vms(ctx, o, rep, logf, phase)
	}
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
	rep.Steps["total"] = time.Since(start).Seconds()
	rep.LoadEnd = loadAvg()
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
				logf("  %s: %d of %d lookups in %.1fs, GETATTR p50 %.0fus %s", s.Name, r.LookedUp, n, r.LookupS, r.P50us, r.Failed)
				rep.Scale = append(rep.Scale, r)
			}
			if n == o.ScaleFiles && err == nil && r.Failed == "" {
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
	m := o.Machine
	if o.want("net") {
		phase("network path: TCP stream each way, vnet and user net, per MTU", func() error {
			nm := m
			nm.CPUs = max(nm.CPUs, 2)
			var errs []error
			paths := netPaths(o.MTUs, o.NetAll)
			{
				for _, n := range paths {
					up, down, err := vmbench.NetPath(ctx, im, filepath.Join(o.Out, "net"), nm, n, o.NetBytes)
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", n.Name(), err))
						continue
					}
					logf("  %s: host->guest %.0f MB/s, guest->host %.0f MB/s", n.Name(), up.MBps, down.MBps)
					rep.Net = append(rep.Net, up, down)
				}
			}
			return errors.Join(errs...)
		})
	}
	if !(o.want("ours") || o.want("latency") || o.want("nfsd") || o.want("local") || o.want("ours-user") || o.want("nfsd-user")) {
		return
	}
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
		// As the product formats: 2 vCPUs (cryptsetup gives the keyslot one lane per CPU, up to 4).
		fm := vmbench.Machine{MemoryMiB: max(m.MemoryMiB, qemu.MemoryForFormat(int64(vmbench.KDF.PBKDFMemoryKiB>>10))), CPUs: 2}
		err = vmbench.FormatDisk(ctx, im, disk, fm, pass, logf)
		ok = err == nil
		return err
	})
	if !ok {
		return
	}
	defer os.Remove(disk)
	ul, err := keyslot(disk)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return
	}
	rep.Unlock = ul
	if m.CPUs == 0 {
		m.CPUs = ul.VCPUs // the product's sizing: one vCPU per lane, capped at the host's cores
	}
	ul.VCPUs = m.CPUs
	rep.Settings["server_vm"] = m
	lat := &Latency{NFSDSteps: map[string]float64{}}
	rep.Latency = lat
	vnetPath, userPath := vmbench.Net{}, vmbench.Net{User: true}
	var unlocks []float64
	// The vnet run measures (idle footprint, the fair rows); the user-net run also profiles, so
	// the profiler's own cost stays out of the vnet ours/nfsd ratios.
	oursRun := func(config string, n vmbench.Net, footprint bool) func() error {
		return func() error {
			s, err := vmbench.BootOurs(ctx, im, disk, m, pass, n, logf)
			if err != nil {
				return err
			}
			unlocks = append(unlocks, stepSeconds(s.Steps, "unlock"))
			if !n.User { // the latency table is the product's path
				lat.Runs = append(lat.Runs, s.Steps)
				lat.Totals = append(lat.Totals, s.Total)
			}
			if footprint {
				f, ferr := s.Footprint(ctx, o.Idle)
				if ferr != nil {
					s.Stop(ctx)
					return ferr
				}
				rep.Foot = &f
			}
			tag := strings.ReplaceAll(config, " ", "-")
			prof := filepath.Join(o.Out, "agent-cpu-"+tag+".pprof")
			var stop func() error
			if !footprint {
				var perr error
				if stop, perr = s.CPUProfile(prof); perr != nil {
					logf("  no CPU profile: %v", perr)
				}
			}
			_, port := splitPort(s.VM.NFSAddr())
			lines, err := vmbench.ClientRun(ctx, im, filepath.Join(o.Out, "client-"+tag), "/", port, port, o.Workload, o.ClientLimit)
			rep.Through[config] = lines.Results()
			if stop != nil {
				if perr := stop(); perr != nil {
					logf("  %v", perr)
				} else {
					rep.Profiles = append(rep.Profiles, prof)
				}
				heap := filepath.Join(o.Out, "agent-heap-"+tag+".pprof")
				if perr := s.HeapProfile(heap); perr == nil {
					rep.Profiles = append(rep.Profiles, heap)
				}
			}
			if serr := s.Stop(ctx); serr != nil && err == nil {
				err = fmt.Errorf("shutdown: %w", serr)
			}
			return err
		}
	}
	nfsdRun := func(config string, n vmbench.Net, kdf bool) func() error {
		return func() error {
			spec := vmbench.NFSDSpec{Dir: filepath.Join(o.Out, "nfsd"), Disk: disk, Machine: m, Net: n, Pass: pass,
				Config: guestspec.Config{Mode: guestspec.ModeNFSD, Workload: o.Workload}}
			if kdf {
				spec.Config.KDFBench = &guestspec.KDFBench{PBKDF: vmbench.KDF.PBKDF, MemoryKiB: vmbench.KDF.PBKDFMemoryKiB, Parallel: ul.Lanes, IterTimeMS: kdfBenchMS}
			}
			nd, err := vmbench.StartNFSDBooted(ctx, im, spec, logf)
			if err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			ready, err := nd.WaitReady(rctx)
			cancel()
			if err == nil {
				rep.NFSDMem = ready.MemUsedKiB
				var lines vmbench.Lines
				lines, err = vmbench.ClientRun(ctx, im, filepath.Join(o.Out, "client-"+strings.ReplaceAll(config, " ", "-")), vmbench.NFSDExport, nd.NFSPort, nd.MountPort, o.Workload, o.ClientLimit)
				rep.Through[config] = lines.Results()
			}
			lines, serr := nd.Stop(ctx)
			if kdf {
				for _, s := range []string{"kdf", "unlock", "mount", "network", "nfs", "modules"} {
					lat.NFSDSteps[s] = lines.Step(s)
				}
				lat.KDF = lines.Step("kdf")
				ul.TestPass = lat.KDF
				for _, l := range lines {
					if l.Kind == "kdf-bench" {
						ul.BenchLine = l.Text
						ul.BenchEstimate = kdfEstimate(l.Text, vmbench.KDF.PBKDFForceIterations, vmbench.KDF.PBKDFMemoryKiB)
					}
				}
			}
			if serr != nil && err == nil {
				err = serr
			}
			return err
		}
	}
	if o.want("ours") {
		phase("ours vnet: boot, idle footprint, client VM workload", oursRun(configOursVnet, vnetPath, true))
	}
	if o.want("nfsd") {
		phase("nfsd vnet: kernel nfsd guest (+ cryptsetup benchmark) + client VM workload", nfsdRun(configNFSDVnet, vnetPath, true))
	}
	if o.want("ours-user") {
		phase("ours user net: boot, client VM workload, agent CPU and heap profiles", oursRun(configOursUser, userPath, false))
	}
	if o.want("nfsd-user") {
		phase("nfsd user net: kernel nfsd guest + client VM workload", nfsdRun(configNFSDUser, userPath, false))
	}
	if o.want("local") {
		phase("local: workload inside the nfsd guest on the mount", func() error {
			n, err := vmbench.StartNFSDBooted(ctx, im, vmbench.NFSDSpec{Dir: filepath.Join(o.Out, "local"), Disk: disk, Machine: m, Pass: pass,
				Config: guestspec.Config{Mode: guestspec.ModeLocal, Workload: o.Workload}}, logf)
			if err != nil {
				return err
			}
			lctx, cancel := context.WithTimeout(ctx, o.ClientLimit)
			defer cancel()
			lines, err := n.Wait(lctx)
			rep.Through[configLocal] = lines.Results()
			for _, l := range lines {
				if l.Kind == "ready" {
					rep.LocalMem = l.MemUsedKiB
				}
			}
			return err
		})
	}
	if o.want("latency") {
		phase("ours: mount latency boots", func() error {
			for i := len(lat.Runs); i < o.Runs; i++ {
				s, err := vmbench.BootOurs(ctx, im, disk, m, pass, vnetPath, logf)
				if err != nil {
					return err
				}
				lat.Runs = append(lat.Runs, s.Steps)
				lat.Totals = append(lat.Totals, s.Total)
				unlocks = append(unlocks, stepSeconds(s.Steps, "unlock"))
				logf("  run %d: client mounted %.2fs after QEMU start", i+1, s.Total)
				if err := s.Stop(ctx); err != nil {
					return fmt.Errorf("shutdown: %w", err)
				}
			}
			return nil
		})
	}
	ul.OursUnlock = median(unlocks)
}

// netPaths are the network-path rows: vnet unbatched at every MTU (the MTU choice), then
// batched and QEMU user net at the default MTU only. slirp keeps its own 1500 whatever the guest
// is told, and batching lost at every MTU (host/vnet/mtu.go), so their other MTUs repeated a
// figure at ~25 s a row; -net-all brings them back.
func netPaths(mtus []int, all bool) []vmbench.Net {
	unbatched, batched := false, true
	var paths []vmbench.Net
	for _, mtu := range mtus {
		paths = append(paths, vmbench.Net{MTU: mtu, Batch: &unbatched})
	}
	others := []int{vnet.DefaultMTU}
	if all {
		others = mtus
	}
	for _, mtu := range others {
		paths = append(paths, vmbench.Net{MTU: mtu, Batch: &batched})
	}
	for _, mtu := range others {
		paths = append(paths, vmbench.Net{User: true, MTU: mtu})
	}
	return paths
}

// kdfBenchMS is `cryptsetup benchmark --iter-time`: long enough that it finds more than argon2's
// minimum 4 iterations at the keyslot's memory under TCG (at 4 its figure is only a lower bound).
const kdfBenchMS = 10000

// keyslot reads the bench disk's header: its keyslot's KDF and the product's VM size for it.
func keyslot(disk string) (*Unlock, error) {
	f, err := os.Open(disk)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := luksheader.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("bench disk header: %w", err)
	}
	ks := h.ActiveKeyslots()
	if len(ks) == 0 {
		return nil, fmt.Errorf("bench disk has no active keyslot")
	}
	k := ks[0].KDF
	mem, cpus := supervisor.SizeForUnlock(h)
	return &Unlock{
		Keyslot: fmt.Sprintf("%s, %d MiB, %d iterations, %d lanes", k.Type, k.MemoryKiB>>10, k.Time, k.CPUs),
		Lanes:   k.CPUs, VCPUs: cpus, SizedMemory: mem,
	}, nil
}

// kdfEstimate turns `cryptsetup benchmark`'s argon2 line ("argon2id 4 iterations, 65536 memory, 2
// parallel threads (CPUs) for 256-bit key (requested 2000 ms time)") into seconds for iters
// iterations at memKiB: argon2's time is linear in iterations x memory.
func kdfEstimate(line string, iters, memKiB int) float64 {
	var it, mem, par, bits, ms int
	var name string
	f := strings.NewReplacer(",", " ", "(", " ", ")", " ").Replace(line)
	if _, err := fmt.Sscanf(f, "%s %d iterations %d memory %d parallel threads CPUs for %d-bit key requested %d ms time", &name, &it, &mem, &par, &bits, &ms); err != nil || it == 0 || mem == 0 {
		return 0
	}
	return float64(ms) / 1000 * float64(iters) / float64(it) * float64(memKiB) / float64(mem)
}

func stepSeconds(steps []vmbench.Step, name string) float64 {
	for _, s := range steps {
		if s.Name == name {
			return s.Seconds
		}
	}
	return 0
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
