package unmountwatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mountinfoFixture(t *testing.T) []Mount {
	f, err := os.Open("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseMountinfo(f)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestParseMountinfo(t *testing.T) {
	ms := mountinfoFixture(t)
	if len(ms) != 10 {
		t.Fatalf("%d mounts, want 10", len(ms))
	}
	m := ms[5]
	if m.Mountpoint != "/media/ana/My Drive" || m.FSType != "nfs" || m.Source != "127.0.0.1:/" || !strings.Contains(m.Options, "port=40200") {
		t.Errorf("escaped line parsed as %+v", m)
	}
	if _, err := ParseMountinfo(strings.NewReader("1 2 3 4\n")); err == nil {
		t.Error("malformed line accepted")
	}
	if _, err := ParseMountinfo(strings.NewReader("1 2 0:1 / /x rw shared:1 nosep nfs\n")); err == nil {
		t.Error("line without separator accepted")
	}
}

func TestMountedInMountinfo(t *testing.T) {
	ms := mountinfoFixture(t)
	for _, tc := range []struct {
		t    Target
		want bool
	}{
		{Target{Mountpoint: "/run/luksmount/mnt/backup", Port: 40123}, true},
		{Target{Mountpoint: "/run/luksmount/mnt/backup/", Port: 0}, true},
		{Target{Mountpoint: "/run/luksmount/mnt/backup", Port: 40124}, false}, // someone else's mount there
		{Target{Mountpoint: "/media/ana/My Drive", Port: 40200}, true},
		{Target{Mountpoint: "/mnt/nas", Port: 2049}, false},                     // not from loopback
		{Target{Mountpoint: "/mnt/nas", Host: "192.168.1.5", Port: 2049}, true}, // unless asked
		{Target{Mountpoint: "/mnt/stacked", Port: 40300}, false},                // covered by a tmpfs
		{Target{Mountpoint: "/mnt/v6", Host: "::1", Port: 40400}, true},
		{Target{Mountpoint: "/run", Port: 0}, false},
		{Target{Mountpoint: "/nowhere", Port: 0}, false},
	} {
		if got := MountedInMountinfo(ms, tc.t); got != tc.want {
			t.Errorf("%+v: mounted = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestMountedInFSList(t *testing.T) {
	list := []FSEntry{
		{Type: "apfs", MountOn: "/", MountFrom: "/dev/disk3s1s1"},
		{Type: "devfs", MountOn: "/dev", MountFrom: "devfs"},
		{Type: "apfs", MountOn: "/System/Volumes/Data", MountFrom: "/dev/disk3s5"},
		{Type: "autofs", MountOn: "/System/Volumes/Data/home", MountFrom: "map auto_home"},
		{Type: "nfs", MountOn: "/Volumes/backup", MountFrom: "127.0.0.1:/"},
		{Type: "nfs", MountOn: "/Volumes/nas", MountFrom: "nas.local:/export"},
		{Type: "msdos", MountOn: "/Volumes/USB", MountFrom: "/dev/disk5s1"},
		{Type: "nfs", MountOn: "/private/tmp/x", MountFrom: "127.0.0.1:/"},
	}
	for mp, want := range map[string]bool{
		"/Volumes/backup": true, "/Volumes/backup/": true, "/Volumes/nas": false, "/Volumes/USB": false,
		"/Volumes/gone": false, "/private/tmp/x": true,
	} {
		if got := MountedInFSList(list, Target{Mountpoint: mp}); got != want {
			t.Errorf("%s: mounted = %v, want %v", mp, got, want)
		}
	}
	// Mounted over by something else (the last entry is on top).
	list = append(list, FSEntry{Type: "apfs", MountOn: "/Volumes/backup", MountFrom: "/dev/disk6s1"})
	if MountedInFSList(list, Target{Mountpoint: "/Volumes/backup"}) {
		t.Error("covered mount reported as ours")
	}
}

func TestCstr(t *testing.T) {
	var b [16]byte
	copy(b[:], "nfs")
	if cstr(b[:]) != "nfs" || cstr([]byte("full")) != "full" {
		t.Error("cstr")
	}
}

// fakeSource reports mounted for the first n rescans, and the given kinds on each wait.
type fakeSource struct {
	n        int
	waits    int
	kinds    [][]Kind
	waitErr  error
	closed   bool
	scanErr  error
	interval time.Duration
}

func (f *fakeSource) source() source {
	return source{
		mounted: func() (bool, error) {
			if f.scanErr != nil {
				return false, f.scanErr
			}
			f.n--
			return f.n >= 0, nil
		},
		wait: func(d time.Duration) ([]Kind, error) {
			f.interval = d
			f.waits++
			if f.waitErr != nil {
				return nil, f.waitErr
			}
			if len(f.kinds) > 0 {
				k := f.kinds[0]
				f.kinds = f.kinds[1:]
				return k, nil
			}
			return nil, nil
		},
		close: func() { f.closed = true },
	}
}

func collect(ch <-chan Event) []Kind {
	var out []Kind
	for e := range ch {
		out = append(out, e.Kind)
	}
	return out
}

func TestRunUnmounted(t *testing.T) {
	f := &fakeSource{n: 3, kinds: [][]Kind{nil, {NotResponding}, {NotResponding, Dead}}}
	got := collect(run(context.Background(), f.source(), time.Millisecond))
	want := []Kind{NotResponding, NotResponding, Dead, Unmounted}
	if strings.Join(kindNames(got), ",") != strings.Join(kindNames(want), ",") {
		t.Errorf("events = %v, want %v", got, want)
	}
	if f.waits != 4 || !f.closed || f.interval != time.Millisecond {
		t.Errorf("waits=%d closed=%v interval=%v", f.waits, f.closed, f.interval)
	}
}

func kindNames(ks []Kind) []string {
	var s []string
	for _, k := range ks {
		s = append(s, k.String())
	}
	return s
}

func TestRunErrors(t *testing.T) {
	for name, f := range map[string]*fakeSource{
		"wait": {n: 100, waitErr: errors.New("EBADF")},
		"scan": {n: 100, scanErr: errors.New("EIO")},
	} {
		var events []Event
		for e := range run(context.Background(), f.source(), time.Millisecond) {
			events = append(events, e)
		}
		if len(events) != 1 || events[0].Kind != Failed || events[0].Err == nil || events[0].Time.IsZero() {
			t.Errorf("%s: events = %+v, want one Failed", name, events)
		}
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeSource{n: 1 << 30}
	ch := run(ctx, f.source(), time.Millisecond)
	cancel()
	select {
	case <-drain(ch):
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func drain(ch <-chan Event) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

func TestWatchNotMounted(t *testing.T) {
	// Runs on the real platform watcher: a plain directory is not our mount.
	_, err := Watch(context.Background(), Target{Mountpoint: filepath.Join(t.TempDir(), "x"), Port: 1})
	if !errors.Is(err, ErrNotMounted) {
		t.Errorf("err = %v, want ErrNotMounted", err)
	}
}
