package disks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/diskutil"
)

const headers = "../../pkg/luksheader/testdata"

// fixtureOpener serves header fixtures by device path; missing paths fail with EACCES.
func fixtureOpener(t *testing.T, m map[string]string) Opener {
	return func(path string) (io.ReaderAt, io.Closer, error) {
		name, ok := m[path]
		if !ok {
			return nil, nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
		}
		if name == "" {
			return bytes.NewReader(make([]byte, 64<<10)), io.NopCloser(nil), nil
		}
		b, err := os.ReadFile(filepath.Join(headers, name))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(b), io.NopCloser(nil), nil
	}
}

func readFile(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFromLsblk(t *testing.T) {
	open := fixtureOpener(t, map[string]string{
		"/dev/sdb1": "luks2-label.bin",
		"/dev/sdb2": "ext4.bin",
		"/dev/sdc":  "luks1-pbkdf2.bin",
		"/dev/sdd1": "", // zeros: neither LUKS nor ext
		// /dev/sdd: unreadable and no fstype hint: dropped
	})
	got, err := FromLsblk(readFile(t, "testdata/lsblk.json"), open)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Device: "/dev/nvme0n1p2", Size: 511571214336, Type: "ext4", Label: "root", UUID: "0b5c7a8e-2f3d-4e1a-9b6c-7d8e9f0a1b2c",
			MountedAt: "/", BlockSize: 512, Error: "cannot read header: open /dev/nvme0n1p2: permission denied"},
		{Device: "/dev/sdb1", Size: 892803440640, Type: "luks2", Label: "mylabel", UUID: "55555555-5555-4555-8555-555555555555",
			KDFMemoryKiB: 32768, BlockSize: 512},
		{Device: "/dev/sdb2", Size: 107374182400, Type: "ext4", Label: "myext4", UUID: "6f1c5d3a-2b7e-4c1a-9d0e-1234567890ab", BlockSize: 512},
		{Device: "/dev/sdc", Size: 2000398934016, Type: "luks1", UUID: "11111111-1111-4111-8111-111111111111", BlockSize: 4096,
			MountedAt: "/media/ana/archive", Note: "opened on this host as luks-11111111-1111-4111-8111-111111111111"},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("got\n%s", g)
	}
}

func TestFromLsblkOldFormat(t *testing.T) {
	got, err := FromLsblk(readFile(t, "testdata/lsblk-old.json"), fixtureOpener(t, map[string]string{"/dev/sdb1": "luks2-argon2id.bin"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Size != 892803440640 || got[0].BlockSize != 512 || got[0].KDFMemoryKiB != 32768 {
		t.Errorf("got %+v", got)
	}
	if _, err := FromLsblk([]byte(`{"blockdevices":[{"size":"12x"}]}`), nil); err == nil {
		t.Error("bad size accepted")
	}
}

type fakeDiskutil struct{ list []byte }

func (f fakeDiskutil) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	if strings.Join(args, " ") == "list -plist" {
		return f.list, nil
	}
	return nil, errors.New("unexpected command")
}

func TestFromDiskutil(t *testing.T) {
	tool := &diskutil.Tool{Path: "diskutil", Runner: fakeDiskutil{readFile(t, "../diskutil/testdata/list.plist")}}
	corrupt := bytes.Clone(readFile(t, filepath.Join(headers, "luks2-argon2id.bin")))
	corrupt[4096+20] ^= 1 // primary damaged, secondary fine
	fixtures := fixtureOpener(t, map[string]string{
		"/dev/rdisk4s1": "ext4.bin",
		"/dev/rdisk4s2": "luks2-twoslots.bin",
	})
	open := func(p string) (io.ReaderAt, io.Closer, error) {
		if p == "/dev/rdisk5s1" {
			return bytes.NewReader(corrupt), io.NopCloser(nil), nil
		}
		return fixtures(p)
	}
	got, err := FromDiskutil(context.Background(), tool, open)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, strings.Join([]string{e.Device, e.Type, e.Label, e.UUID, itoa(e.KDFMemoryKiB), e.Error, e.Note}, "|"))
	}
	want := []string{
		"/dev/disk4s1|ext4|myext4|6f1c5d3a-2b7e-4c1a-9d0e-1234567890ab|0||",
		"/dev/disk4s2|luks2||9b6e177c-efee-4071-93be-aaef06afd49b|131072||",
		"/dev/disk5s1|luks2||22222222-2222-4222-8222-222222222222|32768||primary LUKS header damaged; secondary copy in use",
		"/dev/disk6|unknown|||0|cannot read header: open /dev/rdisk6: permission denied|",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestWriteJSONStableKeys(t *testing.T) {
	var buf bytes.Buffer
	WriteJSON(&buf, []Entry{{Device: "/dev/sdb1", Size: 1, Type: "luks2", KDFMemoryKiB: 1048576}})
	want := `{
  "disks": [
    {
      "device": "/dev/sdb1",
      "size": 1,
      "type": "luks2",
      "label": "",
      "uuid": "",
      "mounted_at": "",
      "kdf_memory_kib": 1048576,
      "logical_block_size": 0
    }
  ]
}
`
	if buf.String() != want {
		t.Errorf("JSON =\n%s", buf.String())
	}
	buf.Reset()
	WriteJSON(&buf, nil)
	if strings.TrimSpace(buf.String()) != "{\n  \"disks\": []\n}" {
		t.Errorf("empty JSON = %q", buf.String())
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	WriteTable(&buf, []Entry{
		{Device: "/dev/disk4s2", Size: 892803440640, Type: "luks2", Label: "backup", UUID: "u", KDFMemoryKiB: 1048576},
		{Device: "/dev/disk6", Size: 2000398934016, Type: "unknown", Error: "cannot read header: permission denied"},
	})
	out := buf.String()
	for _, want := range []string{"DEVICE", "KDF MEMORY", "/dev/disk4s2  831.5G", "backup", "1G", "/dev/disk6: cannot read header"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	WriteTable(&buf, nil)
	if !strings.Contains(buf.String(), "No LUKS or ext drives found") {
		t.Errorf("empty table: %q", buf.String())
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1K", 1536: "1.5K", 1 << 30: "1G", 1000204886016: "931.5G", 2000398934016: "1.8T"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// Every non-Apple partition's header is read; only LUKS/ext ones are listed, except that a
// Linux type is listed even when unreadable (finding 14).
func TestFromDiskutilProbesOtherTypes(t *testing.T) {
	tool := &diskutil.Tool{Path: "diskutil", Runner: fakeDiskutil{readFile(t, "../diskutil/testdata/list-mixed.plist")}}
	var opened []string
	fixtures := fixtureOpener(t, map[string]string{
		"/dev/rdisk7s2": "luks2-label.bin",  // LUKS on "Microsoft Basic Data"
		"/dev/rdisk7s4": "luks1-pbkdf2.bin", // LUKS on a GPT Linux LVM partition
		"/dev/rdisk8s1": "",                 // a FAT boot partition: neither
		// rdisk8s2 (NTFS) unreadable: dropped; rdisk8s3 (Linux_LVM) unreadable: kept, hinted
	})
	open := func(p string) (io.ReaderAt, io.Closer, error) {
		opened = append(opened, p)
		return fixtures(p)
	}
	got, err := FromDiskutil(context.Background(), tool, open)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Device+"|"+e.Type+"|"+e.Label)
	}
	want := []string{"/dev/disk7s2|luks2|mylabel", "/dev/disk7s4|luks1|", "/dev/disk8s3|linux|"}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
	wantOpened := []string{"/dev/rdisk7s2", "/dev/rdisk7s4", "/dev/rdisk8s1", "/dev/rdisk8s2", "/dev/rdisk8s3"}
	if !reflect.DeepEqual(opened, wantOpened) {
		t.Errorf("probed %q, want %q (never EFI, HFS, APFS, CoreStorage)", opened, wantOpened)
	}
}

// A plain filesystem the guest mounts (no LUKS, no container) is listed by its type.
func TestProbeNamesPlainFilesystems(t *testing.T) {
	b := make([]byte, 1<<20)
	copy(b[3:], "NTFS    ")
	e := Entry{Size: int64(len(b))}
	if !probeStack(&e, bytes.NewReader(b), e.Size) || e.Type != "ntfs" {
		t.Fatalf("plain NTFS listed as %+v", e)
	}
}
