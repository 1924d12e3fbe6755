package cpio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sample() []Record {
	return []Record{
		{Name: "dev", Mode: TypeDir | 0o755},
		{Name: "dev/console", Mode: TypeChar | 0o600, RdevMajor: 5, RdevMinor: 1},
		{Name: "etc", Mode: TypeDir | 0o755},
		{Name: "etc/a.txt", Mode: TypeReg | 0o644, Data: []byte("hello\n")},
		{Name: "etc/empty", Mode: TypeReg | 0o600},
		{Name: "etc/odd", Mode: TypeReg | 0o755, Data: []byte("abc")},
		{Name: "etc/link", Mode: TypeSymlink | 0o777, Data: []byte("a.txt")},
		{Name: "init", Mode: TypeReg | 0o755, Data: bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)},
	}
}

func archive(t testing.TB, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatalf("WriteRecord(%q): %v", r.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, b []byte) []Record {
	t.Helper()
	r := NewReader(bytes.NewReader(b))
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	b := archive(t, sample())
	if len(b)%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", len(b))
	}
	if got := readAll(t, b); !reflect.DeepEqual(got, sample()) {
		t.Errorf("read back:\n%+v\nwant:\n%+v", got, sample())
	}
}

func TestDeterministic(t *testing.T) {
	a, b := archive(t, sample()), archive(t, sample())
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same records differ")
	}
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", "/abs", "TRAILER!!!", "a\x00b"} {
		w := NewWriter(io.Discard)
		if err := w.WriteRecord(Record{Name: name, Mode: TypeReg | 0o644}); !errors.Is(err, ErrBadName) {
			t.Errorf("WriteRecord(%q) = %v; want ErrBadName", name, err)
		}
	}
	w := NewWriter(io.Discard)
	if err := w.WriteRecord(Record{Name: "d", Mode: TypeDir | 0o755, Data: []byte("x")}); err == nil {
		t.Error("directory with data was accepted")
	}
}

func TestTruncated(t *testing.T) {
	b := archive(t, sample())
	for _, n := range []int{0, 5, 200, len(b) - 4} {
		r := NewReader(bytes.NewReader(b[:n]))
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("archive cut at %d: err = %v; want a truncation error", n, err)
		}
	}
}

// GNU cpio (a build dependency, see HOST_PACKAGES) must list and unpack what we write.
func TestGNUCpioReadsArchive(t *testing.T) {
	bin, err := exec.LookPath("cpio")
	if err != nil {
		t.Fatalf("GNU cpio is needed for this test (run `make deps`): %v", err)
	}
	b := archive(t, sample())
	cmd := exec.Command(bin, "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	var want []string
	for _, r := range sample() {
		want = append(want, r.Name)
	}
	if got := strings.Fields(string(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("cpio -t = %q; want %q", got, want)
	}

	dir := t.TempDir()
	// Device nodes need privileges; unpack everything else.
	var recs []Record
	for _, r := range sample() {
		if r.Mode&TypeMask != TypeChar {
			recs = append(recs, r)
		}
	}
	cmd = exec.Command(bin, "-i", "--quiet", "-d", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(archive(t, recs))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	for _, r := range recs {
		p := filepath.Join(dir, r.Name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s not unpacked: %v", r.Name, err)
			continue
		}
		if uint32(fi.Mode().Perm()) != r.Mode&0o777 && r.Mode&TypeMask != TypeSymlink {
			t.Errorf("%s: perm %o; want %o", r.Name, fi.Mode().Perm(), r.Mode&0o777)
		}
		switch r.Mode & TypeMask {
		case TypeReg:
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, r.Data) {
				t.Errorf("%s: content differs after cpio -i", r.Name)
			}
		case TypeSymlink:
			if got, _ := os.Readlink(p); got != string(r.Data) {
				t.Errorf("%s: link target %q; want %q", r.Name, got, r.Data)
			}
		case TypeDir:
			if !fi.IsDir() {
				t.Errorf("%s is not a directory", r.Name)
			}
		}
	}
}

// FuzzRoundTrip builds records from fuzz input, writes them and reads them back; the result
// must be identical. Arbitrary bytes fed straight to the Reader must never panic.
func FuzzRoundTrip(f *testing.F) {
	f.Add("init", []byte("#!/bin/sh\n"), uint32(0o100755), uint32(0))
	f.Add("dev/console", []byte(nil), uint32(0o020600), uint32(5<<8|1))
	f.Add("lib", []byte(nil), uint32(0o040755), uint32(7))
	f.Fuzz(func(t *testing.T, name string, data []byte, mode, extra uint32) {
		t.Logf("name=%q len=%d mode=%o", name, len(data), mode)
		typ := mode & TypeMask
		if typ != TypeReg && typ != TypeSymlink {
			data = nil
		}
		recs := []Record{
			{Name: name, Mode: mode, UID: extra & 7, Mtime: extra, RdevMajor: extra >> 8 & 0xff, RdevMinor: extra & 0xff, Data: data},
			{Name: "x/" + name, Mode: TypeReg | 0o644, Data: data},
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for _, r := range recs {
			if err := w.WriteRecord(r); err != nil {
				if CheckName(r.Name) == nil && (typ == TypeReg || typ == TypeSymlink || len(r.Data) == 0) {
					t.Fatalf("valid record rejected: %v", err)
				}
				return
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, buf.Bytes())
		for i := range recs {
			if len(recs[i].Data) == 0 {
				recs[i].Data = nil
			}
		}
		if !reflect.DeepEqual(got, recs) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, recs)
		}
		r := NewReader(bytes.NewReader(append([]byte(name), data...)))
		for i := 0; i < 100; i++ {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	})
}
