package clientvm

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/pierrec/lz4/v4"
)

// WriteInitrd as test/stackfix uses it: an executable /init replacing the image's, a spec below
// /etc; parent directories below the top level only (the image's /etc keeps its mode).
func TestWriteInitrdModesAndDirs(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	os.WriteFile(base, []byte("BASE"), 0o644)
	out := filepath.Join(dir, "out")
	if err := WriteInitrd(out, base, map[string][]byte{"/etc/lmtest/s.json": []byte("{}"), "/init": []byte("ELF")}, "/init"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(out)
	if !bytes.HasPrefix(raw, []byte("BASE")) {
		t.Fatal("the image is not first")
	}
	zr := lz4.NewReader(bytes.NewReader(raw[4:]))
	r := cpio.NewReader(zr)
	var got []string
	modes := map[string]uint32{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Name)
		modes[rec.Name] = rec.Mode
	}
	want := []string{"etc/lmtest", "etc/lmtest/s.json", "init"}
	if len(got) != len(want) {
		t.Fatalf("records %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("records %q; want %q", got, want)
		}
	}
	if modes["init"] != cpio.TypeReg|0o755 || modes["etc/lmtest/s.json"] != cpio.TypeReg|0o644 || modes["etc/lmtest"] != cpio.TypeDir|0o755 {
		t.Fatalf("modes %v", modes)
	}
	if err := WriteInitrd(out, filepath.Join(dir, "none"), nil); err == nil {
		t.Fatal("a missing image: no error")
	}
}
