//go:build linux && amd64

package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/initramfs/cpio"
	"github.com/luksmount/luksmount/initramfs/debpkg"
	"github.com/luksmount/luksmount/initramfs/elfdeps"
)

// debApt "downloads" .debs built by the test.
type debApt struct{ debs map[string]string } // spec -> .deb path

func (a debApt) Show(string) (debpkg.Stanza, error) { return nil, debpkg.ErrNoPackage }

func (a debApt) Download(dir string, specs ...string) error {
	for _, s := range specs {
		src, ok := a.debs[s]
		if !ok {
			return errors.New("E: Can't find a version")
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		name, rest, _ := strings.Cut(s, ":")
		arch, ver, _ := strings.Cut(rest, "=")
		if err := os.WriteFile(filepath.Join(dir, name+"_"+ver+"_"+arch+".deb"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeDeb builds a .deb named name from files (path in package -> host file or literal content).
func makeDeb(t *testing.T, dir, name string, files map[string][]byte) (path, sum string) {
	t.Helper()
	root := filepath.Join(dir, name)
	for p, b := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	ctl := "Package: " + name + "\nVersion: 1.0\nArchitecture: amd64\nMaintainer: test <t@example.org>\nDescription: fixture\n"
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name+".deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, path).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v: %s", err, out)
	}
	b, _ := os.ReadFile(path)
	s := sha256.Sum256(b)
	return path, hex.EncodeToString(s[:])
}

func TestBuildFixture(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatalf("dpkg-deb is needed (Debian build host): %v", err)
	}
	dir := t.TempDir()
	const kver = "6.1.0-99-cloud-amd64"
	kmods := "lib/modules/" + kver + "/"
	kdeb, ksum := makeDeb(t, dir, "linux-image-"+kver, map[string][]byte{
		"boot/vmlinuz-" + kver:                         []byte("fake kernel"),
		kmods + "kernel/drivers/virtio/virtio_ring.ko": []byte("ring"),
		kmods + "kernel/drivers/virtio/virtio.ko":      []byte("virtio"),
		kmods + "kernel/drivers/block/virtio_blk.ko":   []byte("blk"),
		kmods + "kernel/drivers/block/unused.ko":       []byte("unused"),
		kmods + "modules.dep":                          []byte("kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_ring.ko:\nkernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/block/unused.ko:\n"),
		kmods + "modules.builtin":                      []byte("kernel/fs/ext4/ext4.ko\n"),
		".luksmount-depmod":                            nil, // modules.dep is given: skip depmod on fake .ko files
	})
	// A userspace package carrying the host's /usr/bin/true and the libraries it needs.
	host := elfdeps.Resolver{Root: elfdeps.Sysroot{Roots: []string{"/"}}, Machine: arches["amd64"].machine, LibDirs: arches["amd64"].libDirs()}
	needs, err := host.Needs([]string{"/usr/bin/true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"etc/tool.conf": []byte("x=1\n")}
	for _, f := range append(needs, elfdeps.File{Path: "/bin/true", Host: "/usr/bin/true"}) {
		b, err := os.ReadFile(f.Host)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(f.Path, "/")] = b
	}
	udeb, usum := makeDeb(t, dir, "tool", files)

	lock := &debpkg.Lock{Pins: []debpkg.Pin{
		{Arch: "amd64", Name: "linux-image-" + kver, DebArch: "amd64", Version: "1.0", SHA256: ksum, Variants: []string{"t"}},
		{Arch: "amd64", Name: "tool", DebArch: "amd64", Version: "1.0", SHA256: usum, Variants: []string{"t"}},
	}}
	apt := debApt{debs: map[string]string{lock.Pins[0].Spec(): kdeb, lock.Pins[1].Spec(): udeb}}
	v := Variant{Name: "t", Output: "t.cpio.lz4", Kernel: "cloud", Modules: []string{"virtio_blk", "ext4"},
		Binaries: []string{"/bin/true"}, Files: []string{"/etc/tool.conf"}, Symlinks: map[string]string{"/bin/yes": "true"}}
	initBin := filepath.Join(dir, "init")
	os.WriteFile(initBin, []byte("\x7fELF fake init"), 0o755)

	build := func(out string) *Result {
		t.Helper()
		res, err := Build(Options{Arch: "amd64", Variant: v, Init: initBin, Lock: lock,
			Cache: debpkg.Cache{Dir: filepath.Join(dir, "cache"), Apt: apt}, OutDir: out})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r1, r2 := build(filepath.Join(dir, "out1")), build(filepath.Join(dir, "out2"))
	if r1.ImageSHA != r2.ImageSHA || r1.Kernel != kver {
		t.Errorf("two builds: %s vs %s (kernel %s)", r1.ImageSHA, r2.ImageSHA, r1.Kernel)
	}
	if strings.Join(r1.Builtin, ",") != "ext4" {
		t.Errorf("Builtin = %v; want [ext4]", r1.Builtin)
	}
	sums, _ := os.ReadFile(filepath.Join(dir, "out1", "SHA256SUMS"))
	if !strings.Contains(string(sums), r1.ImageSHA+"  t.cpio.lz4\n") || !strings.Contains(string(sums), "  vmlinuz\n") {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}
	if k, _ := os.ReadFile(filepath.Join(dir, "out1", "vmlinuz")); string(k) != "fake kernel" {
		t.Errorf("vmlinuz = %q", k)
	}

	img, _ := os.ReadFile(r1.Image)
	got, err := ReadImage(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	// Each module after its dependencies, which its line names (the agent loads in parallel).
	km := "/lib/modules/" + kver + "/kernel/drivers/"
	wantMods := km + "virtio/virtio_ring.ko:\n" + km + "virtio/virtio.ko: " + km + "virtio/virtio_ring.ko\n" +
		km + "block/virtio_blk.ko: " + km + "virtio/virtio.ko " + km + "virtio/virtio_ring.ko\n"
	if m := string(got["etc/luksmount/modules"].Data); m != wantMods {
		t.Errorf("/etc/luksmount/modules =\n%s\nwant\n%s", m, wantMods)
	}
	for _, m := range []string{km + "virtio/virtio_ring.ko", km + "virtio/virtio.ko", km + "block/virtio_blk.ko"} {
		if _, ok := got[strings.TrimPrefix(m, "/")]; !ok {
			t.Errorf("module %s listed but not in the image", m)
		}
	}
	if _, ok := got["lib/modules/"+kver+"/kernel/drivers/block/unused.ko"]; ok {
		t.Error("a module nobody asked for is in the image")
	}
	var info struct {
		Arch, Kernel string
		Packages     map[string]string
	}
	if err := json.Unmarshal(got["etc/luksmount/image.json"].Data, &info); err != nil || info.Arch != "amd64" || info.Kernel != kver || info.Packages["tool"] != "1.0" {
		t.Errorf("image.json = %s (%v)", got["etc/luksmount/image.json"].Data, err)
	}
	if r := got["init"]; r.Mode != cpio.TypeReg|0o755 || string(r.Data) != "\x7fELF fake init" {
		t.Errorf("/init = %o %q", r.Mode, r.Data)
	}
	if r := got["dev/console"]; r.Mode != cpio.TypeChar|0o600 || r.RdevMajor != 5 || r.RdevMinor != 1 {
		t.Errorf("/dev/console = %+v", r)
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "mnt"} {
		if got[d].Mode&cpio.TypeMask != cpio.TypeDir {
			t.Errorf("/%s is not a directory in the image", d)
		}
	}
	if string(got["usr/bin/true"].Data) != "/bin/true" || string(got["bin/yes"].Data) != "true" {
		t.Errorf("symlinks: /usr/bin/true -> %q, /bin/yes -> %q", got["usr/bin/true"].Data, got["bin/yes"].Data)
	}
	for _, f := range needs {
		if _, ok := got[strings.TrimPrefix(f.Path, "/")]; !ok {
			t.Errorf("library %s missing from the image", f.Path)
		}
	}
	if string(got["etc/tool.conf"].Data) != "x=1\n" {
		t.Errorf("/etc/tool.conf = %q", got["etc/tool.conf"].Data)
	}

	// A pin that is gone from the mirror fails with the make lock hint.
	lock.Pins[1].Version = "0.9"
	os.RemoveAll(filepath.Join(dir, "cache"))
	_, err = Build(Options{Arch: "amd64", Variant: v, Init: initBin, Lock: lock,
		Cache: debpkg.Cache{Dir: filepath.Join(dir, "cache"), Apt: apt}, OutDir: filepath.Join(dir, "out3")})
	if !errors.Is(err, debpkg.ErrNotDownloadable) || !strings.Contains(err.Error(), "make lock") {
		t.Errorf("gone pin: err = %v", err)
	}
	// No pins for a variant: tell the user to lock.
	v.Name = "other"
	if _, err := Build(Options{Arch: "amd64", Variant: v, Init: initBin, Lock: lock, OutDir: dir}); !errors.Is(err, ErrNotLocked) {
		t.Errorf("unlocked variant: err = %v; want ErrNotLocked", err)
	}
}
