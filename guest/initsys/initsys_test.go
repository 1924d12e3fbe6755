package initsys

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseModules(t *testing.T) {
	in := "# load order\n/lib/modules/k/virtio.ko\n\n  /lib/modules/k/virtio_pci.ko  \n"
	got, err := ParseModules(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "/lib/modules/k/virtio.ko" || got[1] != "/lib/modules/k/virtio_pci.ko" {
		t.Fatalf("ParseModules = %q", got)
	}
	if _, err := ParseModules(strings.NewReader("virtio.ko\n")); err == nil {
		t.Fatal("a relative module path was accepted")
	}
}

func TestParseCmdline(t *testing.T) {
	c := ParseCmdline("console=ttyS0 panic=-1 quiet luksmount.debug luksmount.watchdog=0\n")
	if !c.Flag("luksmount.debug") || !c.Flag("quiet") || c.Values["console"] != "ttyS0" {
		t.Fatalf("ParseCmdline = %+v", c)
	}
	if c.Flag("luksmount.watchdog") || !c.Has("luksmount.watchdog") {
		t.Fatal("key=0 must be present but off")
	}
	if c.Flag("luksmount.nothere") {
		t.Fatal("absent key reported on")
	}
}

func TestPowerOffMode(t *testing.T) {
	for _, tc := range []struct {
		arch string
		acpi bool
		want string
	}{{"amd64", true, "poweroff"}, {"amd64", false, "restart"}, {"arm64", false, "poweroff"}} {
		if got := PowerOffMode(tc.arch, tc.acpi); got != tc.want {
			t.Errorf("PowerOffMode(%s, acpi=%v) = %s; want %s", tc.arch, tc.acpi, got, tc.want)
		}
	}
}

// A modules line names what it needs; the early set takes its dependencies along and both sets
// keep the load order.
func TestParseModuleDepsAndSplit(t *testing.T) {
	in := "/k/virtio_ring.ko:\n/k/virtio.ko: /k/virtio_ring.ko\n/k/dm-mod.ko\n/k/virtio_blk.ko: /k/virtio.ko /k/virtio_ring.ko\n/k/dm-crypt.ko: /k/dm-mod.ko\n"
	mods, err := ParseModuleDeps(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 5 || mods[3].Path != "/k/virtio_blk.ko" || len(mods[3].Deps) != 2 || len(mods[2].Deps) != 0 {
		t.Fatalf("ParseModuleDeps = %+v", mods)
	}
	if p, _ := ParseModules(strings.NewReader(in)); len(p) != 5 || p[4] != "/k/dm-crypt.ko" {
		t.Fatalf("ParseModules = %q", p)
	}
	first, rest := SplitModules(mods, func(p string) bool { return p == "/k/virtio_blk.ko" })
	var f, r []string
	for _, m := range first {
		f = append(f, m.Path)
	}
	for _, m := range rest {
		r = append(r, m.Path)
	}
	if strings.Join(f, " ") != "/k/virtio_ring.ko /k/virtio.ko /k/virtio_blk.ko" || strings.Join(r, " ") != "/k/dm-mod.ko /k/dm-crypt.ko" {
		t.Fatalf("SplitModules: first %q, rest %q", f, r)
	}
	if _, err := ParseModuleDeps(strings.NewReader("/k/a.ko: b.ko\n")); err == nil {
		t.Fatal("a relative dependency path was accepted")
	}
}

// Every module is loaded once, never before what it depends on, and independent ones overlap.
func TestLoadParallelOrder(t *testing.T) {
	mods := []Module{
		{Path: "/a"}, {Path: "/b", Deps: []string{"/a"}}, {Path: "/c"}, {Path: "/d", Deps: []string{"/b", "/a", "/builtin"}},
	}
	var mu sync.Mutex
	loaded := map[string]bool{}
	inFlight, most := 0, 0
	gate := make(chan struct{})
	go func() { time.Sleep(50 * time.Millisecond); close(gate) }()
	rs := loadParallel(mods, func(p string) ModuleResult {
		mu.Lock()
		for _, m := range mods {
			if m.Path == p {
				for _, d := range m.Deps {
					if d != "/builtin" && !loaded[d] {
						t.Errorf("%s loaded before its dependency %s", p, d)
					}
				}
			}
		}
		if loaded[p] {
			t.Errorf("%s loaded twice", p)
		}
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		if p == "/a" || p == "/c" {
			<-gate // a and c are independent: both must be in flight together
		}
		mu.Lock()
		inFlight--
		loaded[p] = true
		mu.Unlock()
		return ModuleResult{Path: p, Loaded: true}
	})
	for i, r := range rs {
		if r.Path != mods[i].Path || !r.Loaded {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if most < 2 {
		t.Error("independent modules did not load in parallel")
	}
}
