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
			"ours":  {{Step: workload.SeqWrite, Rate: 20, Unit: "MB/s"}},
			"nfsd":  {{Step: workload.SeqWrite, Rate: 10, Unit: "MB/s"}},
			"local": {{Step: workload.SeqWrite, Rate: 40, Unit: "MB/s"}},
		},
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
		"2.00x", "0.50x", // ours/nfsd, ours/local
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
