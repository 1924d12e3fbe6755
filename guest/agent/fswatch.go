package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Fault steps sent to the host (host/supervisor/faults.go reads them).
const (
	faultDrive    = "fault:drive"
	faultFS       = "fault:fs"
	faultReadOnly = "fault:readonly"
	faultFull     = "fault:full"
	faultSpace    = "fault:space"
)

// classifyKernel sorts a kernel log message into a fault step ("" = not one).
func classifyKernel(msg string) string {
	switch {
	case strings.Contains(msg, "Remounting filesystem read-only"), // ext4
		strings.Contains(msg, "forced shutdown"),               // xfs: "Filesystem has been shut down" too
		strings.Contains(msg, "Filesystem has been shut down"), // xfs
		strings.Contains(msg, "forced readonly"):               // btrfs
		return faultReadOnly
	case strings.Contains(msg, "I/O error, dev "), strings.Contains(msg, "Buffer I/O error on dev"),
		strings.Contains(msg, "blk_update_request: I/O error"):
		return faultDrive
	case strings.HasPrefix(msg, "EXT4-fs error"), strings.Contains(msg, "Aborting journal on device"),
		strings.HasPrefix(msg, "XFS") && strings.Contains(msg, "Corruption"),
		strings.HasPrefix(msg, "BTRFS error"), strings.HasPrefix(msg, "BTRFS critical"):
		return faultFS
	}
	return ""
}

// kmsgText is the message of one /dev/kmsg record: "prio,seq,usec,flags;text\n continuation".
func kmsgText(rec string) string {
	_, text, ok := strings.Cut(rec, ";")
	if !ok {
		return ""
	}
	text, _, _ = strings.Cut(text, "\n")
	return text
}

// FaultSource is where the watcher reads from: the kernel log and the mounted filesystem's space.
type FaultSource struct {
	// Kernel delivers kernel log messages (text only) from now on; closed when it ends.
	Kernel <-chan string
	// Space reports free and total bytes of the filesystem mounted at path.
	Space func(path string) (free, total uint64, err error)
	// Every is the space polling interval (0 = 1 s).
	Every time.Duration
}

// Space thresholds: below fullBytes free the filesystem is full (ext4 keeps a few blocks it
// cannot hand out, so "0 free" is seldom reached); from freeAgainBytes on there is room again.
const (
	fullBytes      = 1 << 20
	freeAgainBytes = 4 << 20
)

// rateLimit lets one report of a kind through per interval and counts what it held back.
type rateLimit struct {
	mu    sync.Mutex
	last  map[string]time.Time
	held  map[string]int
	every time.Duration
}

func (r *rateLimit) allow(kind string, now time.Time) (ok bool, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last, r.held = map[string]time.Time{}, map[string]int{}
	}
	if t, seen := r.last[kind]; seen && now.Sub(t) < r.every {
		r.held[kind]++
		return false, 0
	}
	r.last[kind] = now
	held = r.held[kind]
	r.held[kind] = 0
	return true, held
}

// WatchFaults reports the drive's and filesystem's faults to the host while something is held:
// kernel I/O errors (a drive that went away), filesystem errors and a remount read-only, and a
// full filesystem (edge-triggered: once when it fills, once when space is back).
func (a *Agent) WatchFaults(ctx context.Context, src FaultSource) {
	every := src.Every
	if every == 0 {
		every = time.Second
	}
	rl := &rateLimit{every: 10 * time.Second}
	// Free space is checked every `every` while it changes, and less often (up to 8x) while it
	// does not, so an idle session does not wake the guest every second.
	interval := every
	tick := time.NewTimer(interval)
	defer tick.Stop()
	var lastFree uint64
	full := false
	kernel := src.Kernel
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-kernel:
			if !ok {
				kernel = nil
				continue
			}
			kind := classifyKernel(msg)
			if kind == "" || !a.Holding() {
				continue
			}
			if ok, held := rl.allow(kind, time.Now()); ok {
				more := ""
				if held > 0 {
					more = fmt.Sprintf(" (%d similar messages in the last %s)", held, rl.every)
				}
				a.tl.Fault(kind, "error", "kernel: %s%s", msg, more)
			}
		case <-tick.C:
			a.mu.Lock()
			mp := a.mountpoint
			a.mu.Unlock()
			if mp == "" || src.Space == nil {
				full = false
				interval = 8 * every
				tick.Reset(interval)
				continue
			}
			free, total, err := src.Space(mp)
			if free == lastFree {
				interval = min(2*interval, 8*every)
			} else {
				interval = every
			}
			lastFree = free
			tick.Reset(interval)
			if err != nil || total == 0 {
				continue
			}
			switch {
			case !full && free < fullBytes:
				full = true
				a.tl.Fault(faultFull, "warn", "the filesystem is full (%s free of %s): writes fail with \"no space left\" until files are deleted",
					humanBytes(free), humanBytes(total))
			case full && free >= freeAgainBytes:
				full = false
				a.tl.Fault(faultSpace, "info", "space available again (%s free of %s)", humanBytes(free), humanBytes(total))
			}
		}
	}
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
