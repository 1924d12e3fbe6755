// Package unmountwatch notices when luksmount's NFS mount goes away (Finder
// eject, umount, diskutil unmount) so the host can shut the VM down cleanly.
// Linux watches /proc/self/mountinfo; macOS listens for kqueue EVFILT_FS
// events and rescans the mount table with getfsstat, since xnu's unmount
// event carries no file system id. Both also poll every PollInterval in
// case an event is missed. The decisions (is M still our NFS mount?) are
// platform-neutral functions tested with fixture mount tables.
package unmountwatch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/luksmount/luksmount/pkg/mountinfo"
)

// PollInterval bounds how late an unmount is noticed if no event arrives.
const PollInterval = 2 * time.Second

// ErrNotMounted is returned by Watch when the target is not mounted to begin with.
var ErrNotMounted = errors.New("not mounted")

// Target identifies our mount.
type Target struct {
	Mountpoint string
	Host       string // server address in the mount source; default 127.0.0.1
	Port       int    // NFS port; checked where the mount table records it (Linux); 0 = any
}

func (t Target) host() string {
	if t.Host == "" {
		return "127.0.0.1"
	}
	return t.Host
}

// Kind says what happened.
type Kind int

const (
	// Unmounted: the mount is gone. Always the last event.
	Unmounted Kind = iota
	// NotResponding: the kernel reports the NFS server as not responding (macOS VQ_NOTRESP).
	NotResponding
	// Dead: the kernel gave up on the server (macOS VQ_DEAD, after deadtimeout).
	Dead
	// Failed: watching itself failed; Err says why. Always the last event.
	Failed
)

func (k Kind) String() string {
	switch k {
	case Unmounted:
		return "unmounted"
	case NotResponding:
		return "server not responding"
	case Dead:
		return "server dead"
	default:
		return "watch failed"
	}
}

// Event is one observation.
type Event struct {
	Kind Kind
	Time time.Time
	Err  error
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Mountpoint string
	FSType     string
	Source     string
	Options    string // per-superblock options, e.g. "rw,vers=3,...,port=2049,addr=127.0.0.1"
}

// ParseMountinfo parses the /proc/<pid>/mountinfo format (proc(5)).
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d is malformed: %q", n, line)
		}
		m := Mount{Mountpoint: mountinfo.Unescape(f[4]), FSType: f[sep+1], Source: mountinfo.Unescape(f[sep+2])}
		if len(f) > sep+3 {
			m.Options = f[sep+3]
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read mountinfo: %w", err)
	}
	return out, nil
}

// MountedInMountinfo reports whether t's mount point is, at the top of its
// mount stack, an NFS mount from t's host (and port, when recorded).
func MountedInMountinfo(mounts []Mount, t Target) bool {
	mp := filepath.Clean(t.Mountpoint)
	var top *Mount
	for i := range mounts {
		if mounts[i].Mountpoint == mp {
			top = &mounts[i] // later lines are mounted on top of earlier ones
		}
	}
	if top == nil || (top.FSType != "nfs" && top.FSType != "nfs4") {
		return false
	}
	if !sourceFrom(top.Source, t.host()) {
		return false
	}
	if t.Port > 0 {
		for _, o := range strings.Split(top.Options, ",") {
			if v, ok := strings.CutPrefix(o, "port="); ok && v != strconv.Itoa(t.Port) {
				return false
			}
		}
	}
	return true
}

// sourceFrom reports whether an NFS source "host:/path" names host.
func sourceFrom(source, host string) bool {
	h := source
	if i := strings.LastIndex(source, ":/"); i >= 0 {
		h = source[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return h == host || (host == "127.0.0.1" && h == "localhost")
}

// FSEntry is one getfsstat/statfs record (macOS).
type FSEntry struct {
	Type      string // f_fstypename
	MountOn   string // f_mntonname
	MountFrom string // f_mntfromname
}

// MountedInFSList reports whether t's mount point is an NFS mount from t's
// host in a getfsstat list. Darwin's list holds no port; mountpoint must
// already be resolved (f_mntonname is a real path: /tmp is /private/tmp).
func MountedInFSList(list []FSEntry, t Target) bool {
	mp := filepath.Clean(t.Mountpoint)
	found := false
	for _, e := range list {
		if e.MountOn == mp {
			found = e.Type == "nfs" && sourceFrom(e.MountFrom, t.host()) // the last is the top
		}
	}
	return found
}

// cstr returns b up to its first NUL (statfs names are C strings).
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// source is what a platform watcher provides to the shared loop.
type source struct {
	// mounted rescans the mount table.
	mounted func() (bool, error)
	// wait blocks until the next kernel notification or timeout elapses;
	// it returns the notifications seen (possibly none).
	wait  func(timeout time.Duration) ([]Kind, error)
	close func()
}

// run drives the loop: rescan after every wake-up, report server trouble,
// and stop at the first rescan that finds the mount gone.
func run(ctx context.Context, s source, interval time.Duration) <-chan Event {
	ch := make(chan Event, 8)
	go func() {
		defer close(ch)
		if s.close != nil {
			defer s.close()
		}
		send := func(e Event) bool {
			e.Time = time.Now()
			select {
			case ch <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			kinds, err := s.wait(interval)
			if err != nil {
				send(Event{Kind: Failed, Err: fmt.Errorf("cannot watch mounts: %w", err)})
				return
			}
			for _, k := range kinds {
				if !send(Event{Kind: k}) {
					return
				}
			}
			ok, err := s.mounted()
			if err != nil {
				send(Event{Kind: Failed, Err: fmt.Errorf("cannot read the mount table: %w", err)})
				return
			}
			if !ok {
				send(Event{Kind: Unmounted})
				return
			}
		}
	}()
	return ch
}
