package initramfs

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/pierrec/lz4/v4"
)

func TestTree(t *testing.T) {
	tr := NewTree()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.File("/usr/lib/x/libz.so.1", []byte("z"), 0o644))
	must(tr.File("/init", []byte("i"), 0o755))
	must(tr.Symlink("/usr/sbin/e2fsck", "/sbin/e2fsck"))
	must(tr.CharDev("/dev/console", 0o600, 5, 1))
	must(tr.File("/init", []byte("i"), 0o755)) // same again: fine
	if err := tr.File("/init", []byte("other"), 0o755); err == nil {
		t.Error("conflicting re-add of /init accepted")
	}
	if err := tr.File("/init/x", nil, 0o644); err == nil {
		t.Error("file under a regular file accepted")
	}
	var a, b bytes.Buffer
	must(tr.WriteCpio(&a, 7))
	must(tr.WriteCpio(&b, 7))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of one tree differ")
	}
	r := cpio.NewReader(&a)
	var names []string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		must(err)
		if rec.Mtime != 7 || rec.UID != 0 || rec.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d", rec.Name, rec.Mtime, rec.UID, rec.GID)
		}
		names = append(names, rec.Name)
	}
	want := "dev dev/console init usr usr/lib usr/lib/x usr/lib/x/libz.so.1 usr/sbin usr/sbin/e2fsck"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %q; want %q (sorted, parents created)", got, want)
	}
}

func TestLZ4Deterministic(t *testing.T) {
	// Over one 8 MiB legacy block, so the block framing is exercised.
	data := bytes.Repeat([]byte("luksmount initramfs "), 500000)
	var a, b bytes.Buffer
	if err := LZ4(&a, data); err != nil {
		t.Fatal(err)
	}
	if err := LZ4(&b, data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two compressions differ")
	}
	// Legacy frame (the kernel takes no other LZ4 framing): magic, then per block a
	// little-endian compressed size, each block at most 8 MiB uncompressed.
	h := a.Bytes()
	if !bytes.Equal(h[:4], []byte{0x02, 0x21, 0x4c, 0x18}) {
		t.Fatalf("stream starts % x; want the LZ4 legacy magic", h[:4])
	}
	// An independent decoder, as a user's lz4(1) would check it.
	if _, err := exec.LookPath("lz4"); err == nil {
		cmd := exec.Command("lz4", "-dc")
		cmd.Stdin = bytes.NewReader(a.Bytes())
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, data) {
			t.Errorf("lz4 -d gave %d bytes, err %v; want the input back", len(out), err)
		}
	}
	out, err := io.ReadAll(lz4.NewReader(&a))
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("decompressed %d bytes, err %v; want the input back", len(out), err)
	}
}

func TestUsrCounterpart(t *testing.T) {
	for in, want := range map[string]string{
		"/sbin/cryptsetup":   "/usr/sbin/cryptsetup",
		"/usr/sbin/exportfs": "/sbin/exportfs",
		"/bin/busybox":       "/usr/bin/busybox",
		"/usr/bin/x":         "/bin/x",
		"/etc/mke2fs.conf":   "",
	} {
		if got := usrCounterpart(in); got != want {
			t.Errorf("usrCounterpart(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestVariants(t *testing.T) {
	outputs := map[string]bool{}
	for name, v := range Variants {
		if v.Name != name || !strings.HasSuffix(v.Output, ".cpio.lz4") || outputs[v.Output] {
			t.Errorf("variant %s: bad name or output %q", name, v.Output)
		}
		outputs[v.Output] = true
		if len(v.Packages) == 0 || len(v.Modules) == 0 || v.Kernel == "" {
			t.Errorf("variant %s lacks packages, modules or kernel", name)
		}
	}
	agent := Variants["agent"]
	for _, arch := range Arches() {
		mods := strings.Join(agent.ModulesFor(arch), " ")
		for _, m := range []string{"virtio_blk", "dm-crypt", "af_alg", "algif_skcipher", "vmw_vsock_virtio_transport", "virtio_console"} {
			if !strings.Contains(mods, m) {
				t.Errorf("agent on %s does not load %s", arch, m)
			}
		}
	}
	if Variants["agent"].Output != "initramfs.cpio.lz4" {
		t.Error("the agent image must be build/<arch>/initramfs.cpio.lz4")
	}
}

func TestIsKernel(t *testing.T) {
	for name, want := range map[string]bool{
		"linux-image-6.1.0-56-cloud-amd64": true,
		"linux-image-cloud-amd64":          false,
		"linux-image-6.1.0-56-amd64":       false,
		"linux-image-6.1.0-56-cloud-arm64": false,
	} {
		if got := isKernel(name, "cloud", "amd64"); got != want {
			t.Errorf("isKernel(%q) = %v", name, got)
		}
	}
}

func TestDiffImages(t *testing.T) {
	image := func(init string, extra bool) map[string]cpio.Record {
		tr := NewTree()
		tr.File("/init", []byte(init), 0o755)
		tr.File("/etc/a", []byte("a"), 0o644)
		if extra {
			tr.Dir("/mnt", 0o755)
		}
		var raw, gz bytes.Buffer
		if err := tr.WriteCpio(&raw, 0); err != nil {
			t.Fatal(err)
		}
		LZ4(&gz, raw.Bytes())
		m, err := ReadImage(&gz)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if d := DiffImages(image("x", false), image("x", false)); len(d) != 0 {
		t.Errorf("identical images differ: %q", d)
	}
	d := DiffImages(image("x", false), image("yy", true))
	want := "content differs: /init (1/2 bytes)|only in second: /mnt"
	if strings.Join(d, "|") != want {
		t.Errorf("DiffImages = %q; want %q", d, want)
	}
}
