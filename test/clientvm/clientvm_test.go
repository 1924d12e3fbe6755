package clientvm

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/pierrec/lz4/v4"
)

func TestMountData(t *testing.T) {
	got := Spec{Port: 40001, Export: "/", MountOptions: "rsize=1048576"}.MountData()
	for _, want := range []string{"vers=3", "proto=tcp", "port=40001", "mountport=40001", "nolock", "addr=10.0.2.2", "rsize=1048576"} {
		if !strings.Contains(got, want) {
			t.Errorf("MountData() = %q; missing %q", got, want)
		}
	}
}

func TestCombinedInitrdCarriesSpecAndManifest(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.gz")
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	w := cpio.NewWriter(zw)
	w.WriteRecord(cpio.Record{Name: "init", Mode: cpio.TypeReg | 0o755, Data: []byte("x")})
	w.Close()
	zw.Close()
	os.WriteFile(base, b.Bytes(), 0o644)

	out := filepath.Join(dir, "out")
	spec := Spec{Port: 7, Export: "/", Run: "files"}
	if err := combinedInitrd(out, base, spec, []byte("m"), map[string][]byte{"/etc/lmbench/x/spec.json": []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(out)
	if !bytes.HasPrefix(raw, b.Bytes()) {
		t.Fatal("combined initrd does not start with the base image")
	}
	zr := lz4.NewReader(bytes.NewReader(raw[len(b.Bytes()):]))
	r := cpio.NewReader(zr)
	files := map[string][]byte{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files["/"+rec.Name] = rec.Data
	}
	var got Spec
	if err := json.Unmarshal(files[SpecPath], &got); err != nil || got != spec {
		t.Fatalf("spec in archive = %+v, %v; want %+v", got, err, spec)
	}
	if string(files["/etc/lmbench/x/spec.json"]) != "{}" {
		t.Fatalf("extra file = %q", files["/etc/lmbench/x/spec.json"])
	}
	if _, ok := files["/etc/lmbench/x"]; !ok {
		t.Fatal("parent directory of an extra file missing from the archive")
	}
	if string(files[ManifestPath]) != "m" {
		t.Fatalf("manifest = %q", files[ManifestPath])
	}
}

func TestQEMUConfigRendersThroughHostQEMU(t *testing.T) {
	c := Config{Arch: "arm64", Kernel: "/b/vmlinuz", Dir: "/w", Ports: []string{"org.bench.results"}, Memory: 768}
	qc := qemuConfig(c, "/w/initrd", "/w/results.jsonl", "/w/console.log")
	args, err := qc.Args()
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-M virt -accel tcg -cpu max,pauth=off", "-m 768", "-append console=ttyAMA0 panic=-1 quiet cryptomgr.notests",
		"-netdev user,id=net0 ", "chardev=port0,name=" + ResultsPort, "file,id=port1,path=/w/org.bench.results.out",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("client VM command line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "org.luksmount.agent") {
		t.Errorf("client VM has an agent control port: %s", line)
	}
}
