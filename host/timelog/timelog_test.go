package timelog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
)

func TestTimeline(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cur := start
	l.now = func() time.Time { return cur }
	l.Begin("luksmount 1.0: mount %s", "/tmp/t.img")
	tm := l.Start("boot VM")
	cur = cur.Add(2290 * time.Millisecond)
	tm.Done(nil, "qemu pid %d", 4242)
	cur = cur.Add(10 * time.Millisecond)
	l.Guest(control.Event{Kind: control.EventStep, Time: 1.5, Step: "unlock", Duration: 2.5, Message: "opened luks2"})
	tm = l.Start("mount nfs")
	cur = cur.Add(3 * time.Second)
	err := tm.Done(errors.New("mount_nfs: timed out"), "at %s", "/Volumes/x")
	if err == nil {
		t.Fatal("Done must return its error")
	}
	want := strings.Join([]string{
		"=== 2026-03-01 12:00:00 UTC luksmount 1.0: mount /tmp/t.img",
		"12:00:02.290   +2.29s  host   boot VM                  2.29s  qemu pid 4242",
		"12:00:02.300   +2.30s  guest  unlock                   2.50s  [t=1.50s] opened luks2",
		"12:00:05.300   +5.30s  host   mount nfs                3.00s  at /Volumes/x: FAILED: mount_nfs: timed out",
		"",
	}, "\n")
	if buf.String() != want {
		t.Fatalf("timeline:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestGuestWarningAndMultiline(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.Guest(control.Event{Kind: control.EventLog, Time: 0.25, Level: "warn", Message: "e2fsck says:\nline1\nline2"})
	got := buf.String()
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "WARN: e2fsck says: | line1 | line2") {
		t.Fatalf("got %q", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:            "0ms",
		12 * time.Millisecond:   "12ms",
		1520 * time.Millisecond: "1.52s",
		123 * time.Second:       "2m03s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLastSession(t *testing.T) {
	data := []byte("=== one\na\n=== two\nb\nc\n")
	if got := string(LastSession(data)); got != "=== two\nb\nc\n" {
		t.Fatalf("got %q", got)
	}
	if got := string(LastSession([]byte("=== only\nx\n"))); got != "=== only\nx\n" {
		t.Fatalf("got %q", got)
	}
}

func TestOpenPermissionsAndTee(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	p := filepath.Join(dir, "s.log")
	l, err := Open(p, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	var tee bytes.Buffer
	l.Tee(&tee)
	l.Note(Host, "hello")
	l.Close()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %v, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Fatalf("log dir mode %v, want 0700", dst.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	if !strings.HasSuffix(string(data), "hello\n") || tee.String() != string(data) {
		t.Fatalf("file %q tee %q", data, tee.String())
	}
}

func TestFollow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.log")
	os.WriteFile(p, []byte("one\n"), 0o600)
	f, _ := os.Open(p)
	defer f.Close()
	var out bytes.Buffer
	polls := 0
	err := Follow(f, 0, &out, time.Millisecond, func() bool {
		polls++
		if polls == 1 {
			w, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			w.WriteString("two\n")
			w.Close()
			return false
		}
		return polls > 2
	})
	if err != nil || out.String() != "one\ntwo\n" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
}
