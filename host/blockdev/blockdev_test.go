package blockdev

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/pkg/luksheader"
)

func TestResolve(t *testing.T) {
	devs := map[string]bool{"/dev/sdb1": true, "/dev/vda": true, "image.img": true}
	exists := func(p string) bool { return devs[p] }
	for _, tc := range []struct{ in, goos, want string }{
		{"disk4s1", "darwin", "/dev/rdisk4s1"},
		{"/dev/disk4s1", "darwin", "/dev/rdisk4s1"},
		{"/dev/rdisk4s1", "darwin", "/dev/rdisk4s1"},
		{"rdisk12", "darwin", "/dev/rdisk12"},
		{"disk4", "darwin", "/dev/rdisk4"},
		{"/dev/disk4s1x", "darwin", "/dev/disk4s1x"},
		{"disk4s1", "linux", "disk4s1"},
		{"sdb1", "linux", "/dev/sdb1"},
		{"/dev/sdb1", "linux", "/dev/sdb1"},
		{"vda", "linux", "/dev/vda"},
		{"image.img", "linux", "image.img"}, // a file in the working directory wins
		{"./x/../image.img", "darwin", "image.img"},
		{"nosuch", "linux", "nosuch"},
	} {
		if got := Resolve(tc.in, tc.goos, exists); got != tc.want {
			t.Errorf("Resolve(%q, %s) = %q, want %q", tc.in, tc.goos, got, tc.want)
		}
	}
}

func TestWholeDiskName(t *testing.T) {
	for in, want := range map[string]string{
		"disk4s1": "disk4", "/dev/rdisk4s12": "disk4", "/dev/disk10": "disk10", "/tmp/a.img": "", "sdb1": "",
	} {
		if got := WholeDiskName(in); got != want {
			t.Errorf("WholeDiskName(%q) = %q, want %q", in, got, want)
		}
	}
}

// strictReader fails like a raw device on unaligned access.
type strictReader struct {
	data  []byte
	block int64
	calls int
}

func (s *strictReader) ReadAt(p []byte, off int64) (int, error) {
	s.calls++
	if off%s.block != 0 || int64(len(p))%s.block != 0 {
		return 0, fmt.Errorf("unaligned read off=%d len=%d", off, len(p))
	}
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestAlignedReader(t *testing.T) {
	data := make([]byte, 64<<10)
	rand.New(rand.NewSource(1)).Read(data)
	for _, block := range []int{512, 4096} {
		s := &strictReader{data: data, block: int64(block)}
		r := NewAlignedReader(s, block, int64(len(data)))
		for _, c := range []struct {
			off int64
			n   int
		}{{0, 8}, {0, 592}, {1024, 1024}, {6, 2}, {4095, 2}, {16384, 4096}, {100, 10000}, {int64(len(data)) - 3, 3}} {
			p := make([]byte, c.n)
			n, err := r.ReadAt(p, c.off)
			if err != nil || n != c.n || !bytes.Equal(p, data[c.off:c.off+int64(c.n)]) {
				t.Errorf("block %d: ReadAt(off=%d,n=%d) = %d, %v (data match %v)", block, c.off, c.n, n, err, bytes.Equal(p[:n], data[c.off:c.off+int64(n)]))
			}
		}
		// Past the end: short read with EOF, as io.ReaderAt requires.
		p := make([]byte, 100)
		n, err := r.ReadAt(p, int64(len(data))-50)
		if n != 50 || err != io.EOF || !bytes.Equal(p[:50], data[len(data)-50:]) {
			t.Errorf("block %d: tail read = %d, %v", block, n, err)
		}
		if n, err := r.ReadAt(p, int64(len(data))); n != 0 || err != io.EOF {
			t.Errorf("block %d: read at end = %d, %v", block, n, err)
		}
	}
}

func TestAlignedReaderParsesLUKS(t *testing.T) {
	// The header parser's small unaligned reads must work through a raw device.
	b, err := os.ReadFile("../../pkg/luksheader/testdata/luks2-twoslots.bin")
	if err != nil {
		t.Fatal(err)
	}
	r := NewAlignedReader(&strictReader{data: b, block: 4096}, 4096, int64(len(b)))
	h, err := luksheader.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if h.MaxKDFMemoryKiB() != 131072 {
		t.Errorf("MaxKDFMemoryKiB = %d", h.MaxKDFMemoryKiB())
	}
}

func makeImage(t *testing.T, size int64) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenImage(t *testing.T) {
	p := makeImage(t, 10<<20)
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size != 10<<20 || d.LogicalBlockSize != 512 || d.PhysicalBlockSize != 4096 || !d.IsImage || d.Path != p {
		t.Errorf("got %+v", d)
	}
	if _, err := d.ReaderAt().ReadAt(make([]byte, 10), 5); err != nil {
		t.Errorf("read: %v", err)
	}
}

func TestLockExclusive(t *testing.T) {
	p := makeImage(t, 1<<20)
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(p, Options{})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second open: err = %v, want ErrBusy", err)
	}
	if !strings.Contains(err.Error(), "luksmount status") || !strings.Contains(err.Error(), p) {
		t.Errorf("message %q should name the path and `luksmount status`", err)
	}
	if _, err := Open(p, Options{ReadOnly: true}); !errors.Is(err, ErrBusy) {
		t.Errorf("read-only open while a writer holds it: err = %v, want ErrBusy", err)
	}
	d.Close()
	d2, err := Open(p, Options{})
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	d2.Close()
}

func TestLockShared(t *testing.T) {
	p := makeImage(t, 1<<20)
	a, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	defer b.Close()
	if _, err := Open(p, Options{}); !errors.Is(err, ErrBusy) {
		t.Errorf("writer while readers hold it: err = %v, want ErrBusy", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.img"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.img") {
		t.Errorf("missing: err = %v", err)
	}
	if _, err := Open(t.TempDir(), Options{}); !errors.Is(err, ErrNotDevice) {
		t.Errorf("directory: err = %v, want ErrNotDevice", err)
	}
}

func TestOpenCharDeviceWithoutGeometry(t *testing.T) {
	// /dev/null is a device without a disk size: Open must refuse it, not report 0 bytes.
	d, err := Open("/dev/null", Options{ReadOnly: true})
	if err == nil {
		d.Close()
		t.Fatalf("Open(/dev/null) succeeded: %+v", d)
	}
	if !strings.Contains(err.Error(), "/dev/null") {
		t.Errorf("err %q does not name the device", err)
	}
}
