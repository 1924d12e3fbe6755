package suite

import (
	"bytes"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/bench/loopback"
	"github.com/luksmount/luksmount/bench/vmbench"
	"github.com/luksmount/luksmount/bench/workload"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestPrintShowsRatiosAndFailures(t *testing.T) {
	r := &Report{
		Date: "d", Host: "h", Steps: map[string]float64{"total": 1},
		Latency: &Latency{Runs: [][]vmbench.Step{{{Name: "unlock", Seconds: 3}}, {{Name: "unlock", Seconds: 5}}, {{Name: "unlock", Seconds: 4}}},
			Totals: []float64{8, 9, 10}, KDF: 2.5},
		Through: map[string][]workload.Result{
			configOursVnet: {{Step: workload.SeqWrite, Rate: 20, Unit: "MB/s"}},
			configNFSDVnet: {{Step: workload.SeqWrite, Rate: 10, Unit: "MB/s"}},
			configOursUser: {{Step: workload.SeqWrite, Rate: 16, Unit: "MB/s"}},
			configNFSDUser: {{Step: workload.SeqWrite, Rate: 64, Unit: "MB/s"}},
			configLocal:    {{Step: workload.SeqWrite, Rate: 40, Unit: "MB/s"}},
		},
		Net: []vmbench.StreamResult{
			{Path: "vnet mtu 9000", Direction: "host->guest", Bytes: 1 << 20, MBps: 123},
			{Path: "vnet mtu 9000", Direction: "guest->host", Bytes: 1 << 20, MBps: 77},
		},
		Unlock:   &Unlock{Keyslot: "argon2id", VCPUs: 2, OursUnlock: 4, TestPass: 3, BenchEstimate: 2, BenchLine: "argon2id ..."},
		Workload: workload.Config{SeqBytes: 256 << 20, ReqSize: 1 << 20, SmallFiles: 2000, RandReads: 1000},
		Loop: []loopback.SeqResult{
			{Server: "stock", Op: "read", Depth: 8, MBps: 100}, {Server: "ours", Op: "read", Depth: 8, MBps: 300},
		},
		Errors: []string{"nfsd: boom"},
	}
	var b bytes.Buffer
	Print(&b, r)
	out := b.String()
	for _, want := range []string{
		"unlock", "4.00", "3.00", "5.00", // median, min, max of unlock
		"of which KDF", "2.50",
		"total: QEMU start -> client mounted", "9.00",
		"2.00x", "0.50x", // ours/nfsd vnet, ours/local
		"0.25x", "1.25x", // ours/nfsd user, vnet/user
		"seq 256 MiB", "2000 small files",
		"vnet mtu 9000", "123", "77",
		"0.75x", // cryptsetup/ours unlock
		"3.00x", // loopback ours/stock
		"FAILED: nfsd: boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestOnlyRejectsUnknownPart(t *testing.T) {
	var out, errb bytes.Buffer
	err := Run([]string{"-only", "oursx"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), `unknown part "oursx"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestKDFEstimate(t *testing.T) {
	line := "argon2id     10 iterations,  65536 memory, 2 parallel threads (CPUs) for 256-bit key (requested 2000 ms time)"
	// 4 iterations at 64 MiB: 4/10 of 2 s.
	if got := kdfEstimate(line, 4, 65536); got < 0.79 || got > 0.81 {
		t.Errorf("kdfEstimate = %v, want 0.8", got)
	}
	// Memory lowered by cryptsetup to 32 MiB at its minimum 4 iterations: twice that for 64 MiB.
	if got := kdfEstimate("argon2id 4 iterations, 32768 memory, 2 parallel threads (CPUs) for 256-bit key (requested 2000 ms time)", 4, 65536); got < 3.99 || got > 4.01 {
		t.Errorf("kdfEstimate with lowered memory = %v, want 4", got)
	}
	if got := kdfEstimate("argon2id N/A", 4, 65536); got != 0 {
		t.Errorf("kdfEstimate(N/A) = %v", got)
	}
}

// A saved report (what a run cut short leaves) prints the same table.
func TestPrintSavedReport(t *testing.T) {
	dir := t.TempDir()
	rep := &Report{Date: "2026-12-01T000000", Host: "h", Steps: map[string]float64{"total": 1},
		Workload: workload.Config{SeqBytes: 64 << 20, SmallFiles: 300},
		Through:  map[string][]workload.Result{configOursVnet: {{Step: workload.Stat, Rate: 50, Unit: "ops/s"}}, configNFSDVnet: {{Step: workload.Stat, Rate: 100, Unit: "ops/s"}}}}
	p, err := write(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := Run([]string{"-print", p}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seq 64 MiB", "300 small files", "0.50x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNetPathsRepeatOnlyWhatTheMTUChanges(t *testing.T) {
	names := func(ps []vmbench.Net) []string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Name())
		}
		return s
	}
	mtus := []int{1500, 9000, 65520}
	got := strings.Join(names(netPaths(mtus, false)), "; ")
	want := "vnet mtu 1500 unbatched; vnet mtu 9000 unbatched; vnet mtu 65520 unbatched; vnet mtu 65520 batched; user net mtu 65520"
	if got != want {
		t.Errorf("netPaths = %s\nwant %s", got, want)
	}
	if n := len(netPaths(mtus, true)); n != 9 {
		t.Errorf("-net-all: %d rows, want 9", n)
	}
}
