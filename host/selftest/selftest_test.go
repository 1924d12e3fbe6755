package selftest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFilesStepOnADirectory(t *testing.T) {
	dir := t.TempDir()
	rn := &runner{r: &Report{Mode: "mounted"}, sess: session{Mountpoint: dir}}
	note, err := rn.files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "5 files") || rn.r.WriteMBps <= 0 || rn.r.ReadMBps <= 0 {
		t.Errorf("note %q, write %.1f read %.1f", note, rn.r.WriteMBps, rn.r.ReadMBps)
	}
	for n, want := range map[string]bool{renameTo: true, renameFrom: false, removeName: false, "日本語ファイル.txt": true} {
		if got, _ := DirFS(dir).Exists(n); got != want {
			t.Errorf("%q exists=%v, want %v", n, got, want)
		}
	}
}

// corruptFS flips a byte on read: the checksum comparison must catch it.
type corruptFS struct{ DirFS }

func (c corruptFS) ReadFile(n string) ([]byte, error) {
	b, err := c.DirFS.ReadFile(n)
	if len(b) > 0 {
		b[len(b)/2] ^= 1
	}
	return b, err
}

// lostRenameFS pretends a rename worked but leaves the old name.
type lostRenameFS struct{ DirFS }

func (l lostRenameFS) Rename(from, to string) error {
	b, _ := l.DirFS.ReadFile(from)
	return l.DirFS.WriteFile(to, b)
}

func TestFilesStepCatchesDamage(t *testing.T) {
	for name, mk := range map[string]func(string) FS{
		"corrupt read": func(d string) FS { return corruptFS{DirFS(d)} },
		"lost rename":  func(d string) FS { return lostRenameFS{DirFS(d)} },
	} {
		rn := &runner{r: &Report{Mode: "mounted"}}
		fs := mk(t.TempDir())
		_, err := rn.filesOn(context.Background(), fs)
		if err == nil {
			t.Errorf("%s: the files step passed", name)
		}
	}
}

func TestWithinGivesUp(t *testing.T) {
	t0 := time.Now()
	_, err := within(context.Background(), 50*time.Millisecond, func(ctx context.Context) (string, error) {
		time.Sleep(5 * time.Second) // a hung NFS call ignores ctx
		return "", nil
	})
	if err == nil || time.Since(t0) > 2*time.Second {
		t.Errorf("within returned %v after %s", err, time.Since(t0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := within(ctx, time.Minute, func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestReport(t *testing.T) {
	r := &Report{Mode: "serve-only", WriteMBps: 12.5, ReadMBps: 30,
		Steps:  []Step{{Name: "format", Took: time.Second, Note: "LUKS2"}, {Name: "mount", At: time.Second, Took: 2 * time.Second, Err: "boom"}},
		Failed: []string{"mount: boom"}}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{"(serve-only)", "format    ok", "mount     FAIL", "boom", "write 12.5 MB/s, read 30.0 MB/s", "FAIL: mount: boom"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if r.OK() {
		t.Error("a failed report is OK")
	}
	if (&Report{}).OK() != true || (&Report{Leftover: []string{"x"}}).OK() {
		t.Error("OK() ignores leftovers")
	}
}
