package suite

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/luksmount/luksmount/bench/loopback"
	"github.com/luksmount/luksmount/bench/workload"
)

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func mib(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

func rate(rs []workload.Result, step string) (float64, string) {
	for _, r := range rs {
		if r.Step == step {
			return r.Rate, r.Unit
		}
	}
	return 0, ""
}

func num(v float64) string {
	if v <= 0 {
		return "-"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// Print writes the report as one table.
func Print(w io.Writer, r *Report) {
	fmt.Fprintf(w, "luksmount bench %s on %s (QEMU TCG; one run, same machine)\n", r.Date, r.Host)
	if r.LoadStart != "" {
		fmt.Fprintf(w, "machine shared with other VMs: load average %s at start, %s at end\n", r.LoadStart, r.LoadEnd)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	line := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }

	if l := r.Latency; l != nil && len(l.Runs) > 0 {
		fmt.Fprintf(tw, "\n1. Mount latency, ours (%d runs, seconds)\n", len(l.Runs))
		line("step", "median", "min", "max")
		for i, s := range l.Runs[0] {
			var v []float64
			for _, run := range l.Runs {
				if i < len(run) {
					v = append(v, run[i].Seconds)
				}
			}
			mn, mx := minmax(v)
			line("  "+s.Name, f2(median(v)), f2(mn), f2(mx))
			if s.Name == "unlock" && l.KDF > 0 {
				line("    of which KDF (argon2id, deliberate)", f2(l.KDF), "", "")
			}
		}
		mn, mx := minmax(l.Totals)
		line("  total: QEMU start -> client mounted", f2(median(l.Totals)), f2(mn), f2(mx))
		if l.KDF > 0 {
			line("  total excluding the KDF (target <= 2.00)", f2(median(l.Totals)-l.KDF), f2(mn-l.KDF), f2(mx-l.KDF))
		}
		if len(l.NFSDSteps) > 0 {
			line("  nfsd guest for comparison: unlock "+f2(l.NFSDSteps["unlock"])+", mount "+f2(l.NFSDSteps["mount"])+
				", network "+f2(l.NFSDSteps["network"])+", nfs services "+f2(l.NFSDSteps["nfs"]), "", "", "")
		}
	}

	if u := r.Unlock; u != nil {
		fmt.Fprintf(tw, "\n1b. Unlock at the KDF's speed (seconds; keyslot %s; VM %d vCPUs = one per lane, capped at the host's cores)\n", u.Keyslot, u.VCPUs)
		line("  ours: agent unlock request (median of boots)", f2(u.OursUnlock))
		line("  cryptsetup open --test-passphrase, same kernel/vCPUs/memory (nfsd guest)", f2(u.TestPass), ratio(u.TestPass, u.OursUnlock)+" (cryptsetup/ours)")
		if u.BenchEstimate > 0 {
			what := "  cryptsetup benchmark, scaled to the keyslot's iterations x memory"
			if strings.Contains(u.BenchLine, " 4 iterations") {
				what += " (argon2's minimum: a lower bound)"
			}
			line(what, f2(u.BenchEstimate), ratio(u.BenchEstimate, u.OursUnlock)+" (benchmark/ours)")
			line("    its line: "+u.BenchLine, "", "")
		}
		line(fmt.Sprintf("  the product sizes this keyslot's VM at %d MiB, %d vCPUs on this host", u.SizedMemory, u.VCPUs), "", "")
	}

	if len(r.Through) > 0 {
		wl := workloadOf(r)
		fmt.Fprintf(tw, "\n2. Throughput, kernel NFS client VM (higher is better; seq %d MiB in %d KiB requests, %d small files, %d random 4 KiB reads; -full = 1024 MiB / 10000 files)\n",
			wl.SeqBytes>>20, wl.ReqSize>>10, wl.SmallFiles, wl.RandReads)
		line("step", "unit", "ours vnet", "nfsd vnet", "ours/nfsd vnet", "ours user", "nfsd user", "ours/nfsd user", "local", "ours vnet/local", "vnet/user (ours)")
		for _, step := range workload.Steps {
			var unit string
			get := func(config string) float64 {
				v, u := rate(r.Through[config], step)
				if unit == "" {
					unit = u
				}
				return v
			}
			ov, nv, ou, nu, l := get(configOursVnet), get(configNFSDVnet), get(configOursUser), get(configNFSDUser), get(configLocal)
			line("  "+step, unit, num(ov), num(nv), ratio(ov, nv), num(ou), num(nu), ratio(ou, nu), num(l), ratio(ov, l), ratio(ov, ou))
		}
	}
	if len(r.Net) > 0 {
		fmt.Fprintf(tw, "\n2a. Network path: one TCP stream host <-> server VM through the 127.0.0.1 forward (MB/s; %d MiB each way; guest MTU via virtio-net host_mtu; QEMU's slirp keeps its own 1500)\n", r.Net[0].Bytes>>20)
		line("path", "host->guest", "guest->host")
		byPath := map[string][2]float64{}
		var order []string
		for _, n := range r.Net {
			v, seen := byPath[n.Path]
			if !seen {
				order = append(order, n.Path)
			}
			if n.Direction == "host->guest" {
				v[0] = n.MBps
			} else {
				v[1] = n.MBps
			}
			byPath[n.Path] = v
		}
		for _, p := range order {
			line("  "+p, num(byPath[p][0]), num(byPath[p][1]))
		}
		if d, ok := r.Settings["vnet_default_mtu"]; ok {
			line(fmt.Sprintf("  vnet's default MTU (what ours ran with above): %v", d), "", "")
		}
	}
	if len(r.Loop) > 0 {
		fmt.Fprintf(tw, "\n2b. One connection on loopback, 1 MiB requests, N in flight (MB/s; stock = go-nfs+osfs+CachingHandler)\n")
		line("op", "depth", "stock", "ours", "ours/stock")
		type key struct {
			op    string
			depth int
		}
		got := map[key]map[string]float64{}
		var keys []key
		for _, s := range r.Loop {
			k := key{s.Op, s.Depth}
			if got[k] == nil {
				got[k] = map[string]float64{}
				keys = append(keys, k)
			}
			got[k][s.Server] = s.MBps
		}
		for _, k := range keys {
			line("  seq "+k.op, fmt.Sprint(k.depth), num(got[k]["stock"]), num(got[k]["ours"]), ratio(got[k]["ours"], got[k]["stock"]))
		}
	}

	if r.Foot != nil || len(r.Images) > 0 {
		fmt.Fprintf(tw, "\n3. Footprint\n")
		names := make([]string, 0, len(r.Images))
		for n := range r.Images {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			line("  image: "+n, fmt.Sprintf("%.1f MiB", float64(r.Images[n])/(1<<20)))
		}
		if f := r.Foot; f != nil {
			line("  guest memory in use after mount (ours)", mib(f.GuestMemUsedKiB))
			if r.NFSDMem > 0 {
				line("  guest memory in use after mount (nfsd guest)", mib(r.NFSDMem))
			}
			line("  QEMU RSS (ours)", mib(f.QEMURSSKiB))
			line("  host process RSS (host/vm + gvproxy, in the bench process)", mib(f.HostRSSKiB))
			line(fmt.Sprintf("  idle CPU of a mounted session over %.0fs: QEMU / host process (gvproxy)", f.IdleSeconds),
				fmt.Sprintf("%.2fs / %.2fs = %.2f%% of one core (target <= 0.5%%)", f.IdleCPUQEMU, f.IdleCPUHost, 100*(f.IdleCPUQEMU+f.IdleCPUHost)/f.IdleSeconds))
		}
	}

	if len(r.Scale) > 0 || len(r.List) > 0 {
		fmt.Fprintf(tw, "\n4. Scale (loopback)\n")
		line("server", "looked up (asked)", "lookup s", "lookups/s", "GETATTR p50 us", "p99 us")
		for _, s := range r.Scale {
			if s.Failed != "" {
				line("  "+s.Server, fmt.Sprintf("%d (%d)", s.LookedUp, s.Asked), f2(s.LookupS), "FAILED: "+s.Failed)
				continue
			}
			line("  "+s.Server, fmt.Sprintf("%d (%d)", s.LookedUp, s.Asked), f2(s.LookupS), num(float64(s.LookedUp)/s.LookupS), num(s.P50us), num(s.P99us))
		}
		for _, s := range byServer(r.List) {
			if s.Entries == 0 {
				line("  listing FAILED: " + s.Server)
				continue
			}
			line(fmt.Sprintf("  listing %d entries: %s", s.Entries, s.Server), f2(s.Seconds)+" s", callsNote(s.Calls))
		}
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(tw, "\nagent profiles under the client workload (go tool pprof -top FILE):\n")
		for _, p := range r.Profiles {
			fmt.Fprintf(tw, "  %s\n", p)
		}
	}
	if len(r.Notes) > 0 || len(r.Errors) > 0 {
		fmt.Fprintln(tw)
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "note: %s\n", n)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(tw, "FAILED: %s\n", e)
		}
	}
	phases := make([]string, 0, len(r.Steps))
	for k := range r.Steps {
		phases = append(phases, k)
	}
	sort.Strings(phases)
	var b strings.Builder
	for _, k := range phases {
		fmt.Fprintf(&b, " %s %.0fs;", k, r.Steps[k])
	}
	fmt.Fprintf(tw, "\nphases:%s\n", b.String())
	tw.Flush()
}

// workloadOf is the workload the report ran.
func workloadOf(r *Report) workload.Config { return r.Workload.WithDefaults() }

func callsNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d READDIRPLUS calls", n)
}

func byServer(l []loopback.ListResult) []loopback.ListResult { return l }

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func minmax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	mn, mx := v[0], v[0]
	for _, x := range v {
		mn, mx = min(mn, x), max(mx, x)
	}
	return mn, mx
}
