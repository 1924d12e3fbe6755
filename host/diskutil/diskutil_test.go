package diskutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseList(t *testing.T) {
	l, err := ParseList(read(t, "list.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.AllDisksAndPartitions) != 5 || len(l.WholeDisks) != 5 || len(l.AllDisks) != 14 {
		t.Fatalf("got %d disks, %d whole, %d all", len(l.AllDisksAndPartitions), len(l.WholeDisks), len(l.AllDisks))
	}
	d4 := l.AllDisksAndPartitions[2]
	if d4.DeviceIdentifier != "disk4" || d4.Content != "GUID_partition_scheme" || d4.Size != 1000204886016 || len(d4.Partitions) != 2 {
		t.Errorf("disk4 = %+v", d4)
	}
	if p := d4.Partitions[1]; p.Content != ContentLUKSGUID || p.DiskUUID != "4D5E6F70-8192-43A4-B5C6-D7E8F90A1B2C" || p.Size != 892803440640 {
		t.Errorf("disk4s2 = %+v", p)
	}
	c := l.AllDisksAndPartitions[1]
	if len(c.APFSVolumes) != 2 || c.APFSVolumes[1].MountPoint != "/System/Volumes/Data" || c.APFSPhysicalStores[0].DeviceIdentifier != "disk0s2" {
		t.Errorf("APFS container = %+v", c)
	}
}

func TestCandidates(t *testing.T) {
	l, err := ParseList(read(t, "list.plist"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range l.Candidates() {
		got = append(got, c.DeviceIdentifier+"@"+c.WholeDisk)
	}
	want := []string{"disk4s1@disk4", "disk4s2@disk4", "disk5s1@disk5", "disk6@disk6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %q, want %q", got, want)
	}
	if c := l.Candidates()[3]; !c.Whole || c.Size != 2000398934016 {
		t.Errorf("whole-disk candidate = %+v", c)
	}
	// OS-internal disks are never offered.
	l.AllDisksAndPartitions[2].OSInternal = true
	if n := len(l.Candidates()); n != 2 {
		t.Errorf("%d candidates with disk4 internal, want 2", n)
	}
}

func TestParseInfo(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Info
	}{
		{"info-disk4.plist", Info{DeviceIdentifier: "disk4", DeviceNode: "/dev/disk4", Content: "GUID_partition_scheme", WholeDisk: true,
			ParentWholeDisk: "disk4", MediaName: "Samsung PSSD T7", BusProtocol: "USB", Size: 1000204886016, DeviceBlockSize: 512, Ejectable: true, Writable: true}},
		{"info-disk4s2.plist", Info{DeviceIdentifier: "disk4s2", DeviceNode: "/dev/disk4s2", Content: ContentLUKSGUID, ParentWholeDisk: "disk4",
			BusProtocol: "USB", Size: 892803440640, DeviceBlockSize: 512, Ejectable: true, Writable: true}},
		{"info-disk5s1.plist", Info{DeviceIdentifier: "disk5s1", DeviceNode: "/dev/disk5s1", Content: ContentMBRLUKS, ParentWholeDisk: "disk5",
			BusProtocol: "Secure Digital", Size: 62008590336, DeviceBlockSize: 512, Ejectable: true, Writable: true, Removable: true, RemovableMedia: true}},
		{"info-disk3s5.plist", Info{DeviceIdentifier: "disk3s5", DeviceNode: "/dev/disk3s5", ParentWholeDisk: "disk3", Internal: true,
			BusProtocol: "Apple Fabric", MountPoint: "/System/Volumes/Data", VolumeName: "Data", DeviceBlockSize: 4096, Writable: true, FilesystemType: "apfs"}},
	} {
		i, err := ParseInfo(read(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		w := tc.want
		if i.DeviceIdentifier != w.DeviceIdentifier || i.DeviceNode != w.DeviceNode || i.ParentWholeDisk != w.ParentWholeDisk ||
			i.WholeDisk != w.WholeDisk || i.Internal != w.Internal || i.BusProtocol != w.BusProtocol || i.MountPoint != w.MountPoint ||
			i.VolumeName != w.VolumeName || i.DeviceBlockSize != w.DeviceBlockSize || i.Ejectable != w.Ejectable || i.Writable != w.Writable ||
			i.Removable != w.Removable || i.RemovableMedia != w.RemovableMedia || i.FilesystemType != w.FilesystemType ||
			(w.Content != "" && i.Content != w.Content) || (w.Size != 0 && i.Size != w.Size) || i.MediaName != w.MediaName {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.file, *i, w)
		}
		if i.TotalSize != i.Size {
			t.Errorf("%s: TotalSize %d != Size %d", tc.file, i.TotalSize, i.Size)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for name, b := range map[string]string{
		"garbage": "not a plist <<<",
		"empty":   `<?xml version="1.0"?><plist version="1.0"><dict></dict></plist>`,
		"wrong":   `<?xml version="1.0"?><plist version="1.0"><dict><key>AllDisks</key><string>x</string></dict></plist>`,
	} {
		if _, err := ParseList([]byte(b)); err == nil {
			t.Errorf("ParseList(%s) accepted", name)
		}
		if _, err := ParseInfo([]byte(b)); err == nil {
			t.Errorf("ParseInfo(%s) accepted", name)
		}
	}
}

func TestIsLinuxContent(t *testing.T) {
	for c, want := range map[string]bool{
		"Linux Filesystem": true, ContentLUKSGUID: true, strings.ToLower(ContentLUKSGUID): true, "0xE8": true, "0x83": true,
		"Linux": true, "Linux_LVM": true, "Apple_APFS": false, "Microsoft Basic Data": false, "EFI": false, "": false, "DOS_FAT_32": false,
	} {
		if got := IsLinuxContent(c); got != want {
			t.Errorf("IsLinuxContent(%q) = %v", c, got)
		}
	}
}

type fakeRunner struct {
	out  map[string][]byte
	argv []string
}

func (f *fakeRunner) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	cmd := strings.Join(append([]string{name}, args...), " ")
	f.argv = append(f.argv, cmd)
	if b, ok := f.out[cmd]; ok {
		return b, nil
	}
	return nil, errors.New("exit status 1: Could not find disk")
}

func TestTool(t *testing.T) {
	f := &fakeRunner{out: map[string][]byte{
		"/usr/sbin/diskutil list -plist":            read(t, "list.plist"),
		"/usr/sbin/diskutil info -plist disk4s2":    read(t, "info-disk4s2.plist"),
		"/usr/sbin/diskutil unmountDisk /dev/disk4": nil,
	}}
	tool := &Tool{Path: "/usr/sbin/diskutil", Runner: f}
	ctx := context.Background()
	if l, err := tool.List(ctx); err != nil || len(l.Candidates()) != 4 {
		t.Errorf("List: %v", err)
	}
	if i, err := tool.Info(ctx, "disk4s2"); err != nil || i.Content != ContentLUKSGUID {
		t.Errorf("Info: %v", err)
	}
	if _, err := tool.Info(ctx, "disk9"); err == nil || !strings.Contains(err.Error(), "disk9") {
		t.Errorf("Info(disk9) err = %v", err)
	}
	if err := tool.UnmountDisk(ctx, "/dev/disk4"); err != nil {
		t.Errorf("UnmountDisk: %v", err)
	}
	if err := tool.UnmountDisk(ctx, "disk7"); err == nil || !strings.Contains(err.Error(), "unmountDisk force disk7") {
		t.Errorf("UnmountDisk(disk7) err = %v", err)
	}
}

// Finding 14: LUKS hides on partitions of any non-Apple type.
func TestCandidatesProbeEveryNonAppleType(t *testing.T) {
	l, err := ParseList(read(t, "list-mixed.plist"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range l.Candidates() {
		h := ""
		if c.Hinted {
			h = "!"
		}
		got = append(got, c.DeviceIdentifier+h)
	}
	want := []string{"disk7s2", "disk7s4", "disk8s1", "disk8s2", "disk8s3!"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %q, want %q (! = hinted)", got, want)
	}
}
