package session

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newRegistry(t *testing.T) *Registry {
	return &Registry{Dirs: []string{filepath.Join(t.TempDir(), "run")}, UID: -1, GID: -1}
}

func TestID(t *testing.T) {
	a, b := ID("/tmp/a/t.img"), ID("/tmp/b/t.img")
	if a == b || !strings.HasPrefix(a, "t.img-") || len(a) != len("t.img-")+8 {
		t.Fatalf("ids %q %q", a, b)
	}
	if ID("/tmp/a/t.img") != a {
		t.Fatal("ID must be stable")
	}
	if got := ID("/x/we ird$name"); !strings.HasPrefix(got, "we_ird_name-") {
		t.Fatalf("unsafe characters kept: %q", got)
	}
}

func TestCreateSaveFindClose(t *testing.T) {
	r := newRegistry(t)
	s, err := r.Create(State{Target: "/tmp/t.img", State: StateStarting, SupervisorPid: os.Getpid(), Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(s.Dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("session dir mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Join(s.Dir, stateFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("state.json mode %v", st.Mode().Perm())
	}
	if err := s.Update(func(st *State) { st.Mountpoint = "/mnt/x"; st.State = StateMounted }); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{s.State.ID, "/tmp/t.img", "/tmp//t.img", "/mnt/x"} {
		got, err := r.Find(q)
		if err != nil || got.State != StateMounted {
			t.Fatalf("Find(%q) = %+v, %v", q, got, err)
		}
	}
	if _, err := r.Find("/tmp/other.img"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Find(other) err = %v", err)
	}
	if _, err := r.Create(State{Target: "/tmp/t.img"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Create: %v, want ErrBusy", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("session dir left behind: %v", err)
	}
	if l, _ := r.List(); len(l) != 0 {
		t.Fatalf("sessions after Close: %+v", l)
	}
}

// A session whose supervisor died without cleaning up (lock released by the kernel) is removed by
// the next List, and its target can be mounted again.
func TestStaleSessionIsCleanedUp(t *testing.T) {
	r := newRegistry(t)
	dir := filepath.Join(r.Dirs[0], "t.img-deadbeef")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, lockFile), nil, 0o600)
	data, _ := json.Marshal(State{ID: "t.img-deadbeef", Target: "/tmp/t.img", SupervisorPid: 999999})
	os.WriteFile(filepath.Join(dir, stateFile), data, 0o600)
	l, err := r.List()
	if err != nil || len(l) != 0 {
		t.Fatalf("List = %+v, %v", l, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("stale session dir not removed")
	}
}

// The lock is what says a supervisor is alive: a lock held by another process keeps the session.
func TestLockHeldByAnotherProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Fatal("flock(1) (util-linux) is not installed: run `make deps`")
	}
	r := newRegistry(t)
	s, err := r.Create(State{Target: "/tmp/held.img"})
	if err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(s.Dir, lockFile)
	s.lock.Close() // release ours; a child takes it
	s.lock = nil
	cmd := exec.Command("flock", "-o", "-x", lockPath, "-c", "echo locked; exec sleep 5")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "locked" {
		t.Fatalf("flock child: %q, %v", buf, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		l, _ := r.List()
		if len(l) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session held by another process not listed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if l, _ := r.List(); len(l) != 0 {
		t.Fatalf("session still listed after its holder died: %+v", l)
	}
}

func TestAmbiguous(t *testing.T) {
	r := newRegistry(t)
	a, _ := r.Create(State{ID: "a", Target: "/tmp/a.img", Mountpoint: "/mnt/same"})
	b, _ := r.Create(State{ID: "b", Target: "/tmp/b.img", Mountpoint: "/mnt/same"})
	defer a.Close()
	defer b.Close()
	if _, err := r.Find("/mnt/same"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("got %v", err)
	}
}

func TestMatchesBareDiskName(t *testing.T) {
	if !Matches(State{Target: "/dev/disk4s1"}, "disk4s1") {
		t.Fatal("disk4s1 should match /dev/disk4s1")
	}
	if Matches(State{Target: "/dev/disk4s1"}, "") {
		t.Fatal("empty query matched")
	}
}

// status --json prints State: its keys are documented and must not change by accident.
func TestStateJSONKeysStable(t *testing.T) {
	data, err := json.Marshal(State{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	golden, err := os.ReadFile("testdata/state-keys.golden")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(golden))
	if len(keys) != len(want) {
		t.Fatalf("State has keys %v, golden %v", keys, want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Fatalf("key %q from testdata/state-keys.golden missing (have %v)", k, keys)
		}
	}
}

// A dead session's cleanup hook sees its last state before the directory goes.
func TestOnStaleSeesDeadSession(t *testing.T) {
	dir := t.TempDir()
	r := &Registry{Dirs: []string{dir}, UID: -1, GID: -1}
	s, err := r.Create(State{Target: "/dev/disk4s1", Mountpoint: "/Volumes/backup"})
	if err != nil {
		t.Fatal(err)
	}
	// The supervisor dies without closing: its lock goes, its directory stays.
	s.lock.Close()
	s.lock = nil
	var seen []State
	r.OnStale = func(st State) error { seen = append(seen, st); return nil }
	if l, _ := r.List(); len(l) != 0 {
		t.Fatalf("dead session listed: %+v", l)
	}
	if len(seen) != 1 || seen[0].Mountpoint != "/Volumes/backup" {
		t.Fatalf("OnStale saw %+v", seen)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("dead session directory left: %v", err)
	}
}

func TestMatchesOneMemberOfAMultiDeviceTarget(t *testing.T) {
	st := State{Target: "/img/a.img+/img/b.img"}
	for _, q := range []string{"/img/a.img", "/img/b.img", "/img/a.img+/img/b.img"} {
		if !Matches(st, q) {
			t.Errorf("%s does not match %s", q, st.Target)
		}
	}
	for _, q := range []string{"/img/c.img", "/img", "a.img"} {
		if Matches(st, q) {
			t.Errorf("%s matches %s", q, st.Target)
		}
	}
}
