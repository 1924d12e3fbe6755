package initsys

import (
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestParseOnDemand(t *testing.T) {
	in := "# features\naes:\nlrw: /m/gf128mul.ko /m/lrw.ko\n\nserpent: /m/serpent_generic.ko\n"
	got, err := ParseOnDemand(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got["aes"]) != 0 || strings.Join(got["lrw"], " ") != "/m/gf128mul.ko /m/lrw.ko" {
		t.Fatalf("ParseOnDemand = %v", got)
	}
	for _, bad := range []string{"lrw /m/lrw.ko\n", "lrw: m/lrw.ko\n", ": /m/x.ko\n"} {
		if _, err := ParseOnDemand(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseOnDemand(%q) accepted", bad)
		}
	}
}

func TestFeaturesNeed(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	f := &Features{
		Table: map[string][]string{"aes": nil, "lrw": {"/m/gf128mul.ko", "/m/lrw.ko"}, "serpent": {"/m/serpent.ko"}, "bad": {"/m/bad.ko"}},
		Load: func(paths []string) []ModuleResult {
			mu.Lock()
			calls = append(calls, strings.Join(paths, "+"))
			mu.Unlock()
			var out []ModuleResult
			for _, p := range paths {
				r := ModuleResult{Path: p, Loaded: true}
				if p == "/m/gf128mul.ko" {
					r = ModuleResult{Path: p, Present: true}
				}
				if p == "/m/bad.ko" {
					r = ModuleResult{Path: p, Err: errors.New("exec format error")}
				}
				out = append(out, r)
			}
			return out
		},
	}
	n, err := f.Need("aes", "lrw", "serpent")
	if err != nil || n != 2 {
		t.Fatalf("Need = %d, %v; want 2 loaded", n, err)
	}
	sort.Strings(calls)
	if strings.Join(calls, ",") != ",/m/gf128mul.ko+/m/lrw.ko,/m/serpent.ko" {
		t.Fatalf("loads = %q; want each feature's list once, in its order", calls)
	}
	calls = nil
	if n, err := f.Need("lrw", "serpent"); err != nil || n != 0 || len(calls) != 0 {
		t.Fatalf("second Need = %d, %v, loads %q; want nothing loaded again", n, err, calls)
	}
	if _, err := f.Need("serpent", "anubis", "khazad"); !errors.Is(err, ErrNoFeature) || !strings.Contains(err.Error(), "anubis, khazad") {
		t.Fatalf("unknown features: err = %v", err)
	}
	if _, err := f.Need("bad"); err == nil || !strings.Contains(err.Error(), "exec format error") {
		t.Fatalf("failing module: err = %v", err)
	}
	calls = nil
	if _, err := f.Need("bad"); err == nil || len(calls) != 1 {
		t.Fatal("a feature that failed is retried next time")
	}
}
