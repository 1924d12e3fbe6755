package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/nfsmount"
	"github.com/luksmount/luksmount/host/session"
)

// scriptRunner answers commands from a table; "hang" blocks until the context ends... or forever.
type scriptRunner struct {
	mu   sync.Mutex
	ran  []string
	outs map[string]string // command line -> "ok", "fail" or "hang"
}

func (r *scriptRunner) Run(ctx context.Context, _ *nfsmount.Cred, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	r.mu.Lock()
	r.ran = append(r.ran, line)
	out := r.outs[line]
	r.mu.Unlock()
	switch out {
	case "ok":
		return nil, nil
	case "hang":
		select {} // stuck in the kernel: not even ctx gets it out
	}
	return []byte("busy"), errors.New("exit status 1")
}

// With the VM dead, no plain umount runs (it would sync against the dead server first).
func TestForceUnmountGoesStraightToForce(t *testing.T) {
	for _, goos := range []string{"darwin", "linux"} {
		first := strings.Join(deadUnmountCommands(goos, "/Volumes/x")[0], " ")
		second := strings.Join(deadUnmountCommands(goos, "/Volumes/x")[1], " ")
		r := &scriptRunner{outs: map[string]string{second: "ok"}}
		if err := forceUnmount(context.Background(), r, goos, "/Volumes/x"); err != nil {
			t.Fatalf("%s: %v", goos, err)
		}
		if fmt.Sprint(r.ran) != fmt.Sprint([]string{first, second}) {
			t.Fatalf("%s ran %q", goos, r.ran)
		}
		for _, c := range r.ran {
			if c == "umount /Volumes/x" || c == "/sbin/umount /Volumes/x" {
				t.Fatalf("%s: a plain umount ran: %q", goos, r.ran)
			}
		}
	}
	if got := strings.Join(deadUnmountCommands("darwin", "/V")[0], " "); got != "/usr/sbin/diskutil unmount force /V" {
		t.Fatalf("darwin: %q", got)
	}
	if got := strings.Join(deadUnmountCommands("linux", "/m")[0], " "); got != "umount -f /m" {
		t.Fatalf("linux: %q", got)
	}
}

func TestForceUnmountHasADeadline(t *testing.T) {
	defer func(d time.Duration) { deadUnmountTimeout = d }(deadUnmountTimeout)
	deadUnmountTimeout = 200 * time.Millisecond
	r := &scriptRunner{outs: map[string]string{"umount -f /m": "hang"}}
	start := time.Now()
	err := forceUnmount(context.Background(), r, "linux", "/m")
	if err == nil || !strings.Contains(err.Error(), "within") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
}

func TestCleanStaleUnmountsAndRemoves(t *testing.T) {
	st := session.State{Mountpoint: "/Volumes/backup", NFSAddress: "127.0.0.1:40123", MountpointCreated: true}
	var asked, unmounted, removed []string
	mounted := func(mp string, port int) (bool, error) {
		asked = append(asked, fmt.Sprintf("%s:%d", mp, port))
		return true, nil
	}
	unmount := func(_ context.Context, mp string) error { unmounted = append(unmounted, mp); return nil }
	remove := func(mp string) error { removed = append(removed, mp); return nil }
	if err := cleanStale(st, mounted, unmount, remove); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(asked, unmounted, removed) != "[/Volumes/backup:40123] [/Volumes/backup] [/Volumes/backup]" {
		t.Fatalf("asked %v unmounted %v removed %v", asked, unmounted, removed)
	}

	// Not mounted any more: nothing to force; a directory the user gave is never removed.
	unmounted, removed = nil, nil
	st.MountpointCreated = false
	if err := cleanStale(st, func(string, int) (bool, error) { return false, nil }, unmount, remove); err != nil {
		t.Fatal(err)
	}
	if len(unmounted)+len(removed) != 0 {
		t.Fatalf("unmounted %v removed %v", unmounted, removed)
	}
	// A serve-only session has nothing to clean.
	if err := cleanStale(session.State{}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}
