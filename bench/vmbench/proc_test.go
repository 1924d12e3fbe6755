//go:build linux

package vmbench

import (
	"bytes"
	"io"
	"strings"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/pierrec/lz4/v4"
	"os"
	"testing"
	"time"
)

func TestProcOfSelf(t *testing.T) {
	if rss := RSSKiB(os.Getpid()); rss <= 0 {
		t.Fatalf("RSSKiB(self) = %d", rss)
	}
	c0 := CPUSeconds(os.Getpid())
	for t0 := time.Now(); time.Since(t0) < 300*time.Millisecond; {
	}
	if c1 := CPUSeconds(os.Getpid()); c1 <= c0 {
		t.Fatalf("CPU time did not grow while spinning: %v -> %v", c0, c1)
	}
	if RSSKiB(-1) != 0 || CPUSeconds(-1) != 0 {
		t.Fatal("a missing process should read as 0")
	}
}

func TestAppendFilesAddsParents(t *testing.T) {
	dir := t.TempDir()
	base := dir + "/base"
	os.WriteFile(base, []byte("BASE"), 0o644)
	if err := appendFiles(dir+"/out", base, map[string][]byte{"/etc/lmbench/config.json": []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dir + "/out")
	if string(b[:4]) != "BASE" {
		t.Fatalf("combined image does not start with the base: %q", b[:4])
	}
	zr := lz4.NewReader(bytes.NewReader(b[4:]))
	r := cpio.NewReader(zr)
	var names []string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, rec.Name)
		if rec.Name == "etc/lmbench/config.json" && string(rec.Data) != "{}" {
			t.Fatalf("config content = %q", rec.Data)
		}
	}
	if strings.Join(names, ",") != "etc,etc/lmbench,etc/lmbench/config.json" {
		t.Fatalf("archive = %v; want parents before the file", names)
	}
}
