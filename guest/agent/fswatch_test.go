package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
)

func TestClassifyKernel(t *testing.T) {
	for msg, want := range map[string]string{
		"I/O error, dev vda, sector 264192 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2": faultDrive,
		"Buffer I/O error on dev dm-0, logical block 1, lost async page write":                 faultDrive,
		"EXT4-fs error (device dm-0): ext4_lookup:1785: inode #2: comm nfsd: iget: bad i_size": faultFS,
		"Aborting journal on device dm-0-8.":                                                   faultFS,
		"EXT4-fs (dm-0): Remounting filesystem read-only":                                      faultReadOnly,
		"BTRFS error (device vda): bad tree block start":                                       faultFS,
		"EXT4-fs (dm-0): mounted filesystem with ordered data mode. Quota mode: none.":         "",
		"virtio_net virtio1 eth0: renamed":                                                     "",
	} {
		if got := classifyKernel(msg); got != want {
			t.Errorf("%q: got %q, want %q", msg, got, want)
		}
	}
	if got := kmsgText("3,512,1234567,-;Buffer I/O error on dev dm-0\n SUBSYSTEM=block\n"); got != "Buffer I/O error on dev dm-0" {
		t.Errorf("kmsgText: %q", got)
	}
}

// TestWatchFaultsReportsOnceAndRateLimits: kernel errors reach the host as fault events only while
// a filesystem is held, a burst becomes one line, and a full filesystem is reported once when it
// fills and once when space is back.
func TestWatchFaultsReportsOnceAndRateLimits(t *testing.T) {
	a, _ := newTestAgent(t)
	var mu sync.Mutex
	var got []control.Event
	a.tl.AddSink(func(ev control.Event) {
		if strings.HasPrefix(ev.Step, "fault:") {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	})
	kernel := make(chan string)
	var free uint64 = 100 << 20
	var spaceMu sync.Mutex
	src := FaultSource{Kernel: kernel, Every: 5 * time.Millisecond, Space: func(string) (uint64, uint64, error) {
		spaceMu.Lock()
		defer spaceMu.Unlock()
		return free, 200 << 20, nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.WatchFaults(ctx, src)

	kernel <- "I/O error, dev vda, sector 1 op 0x1:(WRITE)" // nothing held yet: ignored
	a.mu.Lock()
	a.mapper, a.mountpoint = "/dev/mapper/luksmount", "/mnt/drive"
	a.mu.Unlock()
	for i := 0; i < 50; i++ {
		kernel <- "I/O error, dev vda, sector 1 op 0x1:(WRITE)"
	}
	kernel <- "EXT4-fs (dm-0): Remounting filesystem read-only"
	setFree := func(n uint64) {
		spaceMu.Lock()
		free = n
		spaceMu.Unlock()
	}
	wait := func(n int) []control.Event {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			c := append([]control.Event(nil), got...)
			mu.Unlock()
			if len(c) >= n {
				return c
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("want %d fault events, got %+v", n, got)
		return nil
	}
	setFree(512 << 10)
	wait(3)
	setFree(50 << 20)
	evs := wait(4)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	steps := []string{}
	for _, e := range got {
		steps = append(steps, e.Step)
	}
	want := "fault:drive fault:readonly fault:full fault:space"
	if strings.Join(steps, " ") != want {
		t.Fatalf("fault events %v, want %s (50 I/O errors are one line)", steps, want)
	}
	if !strings.Contains(evs[2].Message, "512 KiB free of 200.0 MiB") || evs[2].Level != "warn" {
		t.Fatalf("full message: %+v", evs[2])
	}
}
