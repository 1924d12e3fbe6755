package nfsmount

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDarwinArgs(t *testing.T) {
	got, err := DarwinArgs(Options{Port: 40123, Mountpoint: "/Volumes/backup"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-o",
		"vers=3,tcp,port=40123,mountport=40123,locallocks,nfc,rsize=1048576,wsize=1048576,readahead=16,soft,intr,timeo=300,retrans=3,deadtimeout=180",
		"127.0.0.1:/", "/Volumes/backup"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DarwinArgs =\n %q\nwant\n %q", got, want)
	}
}

func TestDarwinArgsUserWins(t *testing.T) {
	got, err := DarwinArgs(Options{
		Port: 2049, MountPort: 2050, Export: "/mnt/data", Mountpoint: "/Volumes/x", ReadOnly: true, IgnoreOwnership: true,
		Extra: " hard, nolocks,rsize=65536,noac,timeo=100,rsize=131072,,nfc",
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := strings.Split(got[1], ",")
	want := []string{"vers=3", "tcp", "port=2049", "mountport=2050", "wsize=1048576", "readahead=16", "intr", "retrans=3",
		"deadtimeout=180", "ro", "noowners", "hard", "nolocks", "noac", "timeo=100", "rsize=131072", "nfc"}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("options =\n %q\nwant\n %q", opts, want)
	}
	if got[2] != "127.0.0.1:/mnt/data" {
		t.Errorf("source = %q", got[2])
	}
}

func TestLinuxArgs(t *testing.T) {
	got, err := LinuxArgs(Options{Port: 40123, Mountpoint: "/run/luksmount/mnt/backup", Extra: "rwsize=262144"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-t", "nfs", "-o",
		"vers=3,proto=tcp,port=40123,mountport=40123,mountproto=tcp,nolock,soft,timeo=300,retrans=3,addr=127.0.0.1,rsize=262144,wsize=262144",
		"127.0.0.1:/", "/run/luksmount/mnt/backup"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LinuxArgs =\n %q\nwant\n %q", got, want)
	}
	got, _ = LinuxArgs(Options{Host: "::1", Port: 1, Mountpoint: "/m", Extra: "udp,lock"})
	o := "," + got[3] + ","
	if got[4] != "[::1]:/" || !strings.Contains(o, ",udp,") || strings.Contains(o, ",proto=tcp,") || strings.Contains(o, ",nolock,") || !strings.Contains(o, ",lock,") {
		t.Errorf("IPv6/udp/lock override: %q", got)
	}
}

func TestArgsErrors(t *testing.T) {
	for _, o := range []Options{
		{Mountpoint: "/m"},              // no port
		{Port: 70000, Mountpoint: "/m"}, // bad port
		{Port: 1},                       // no mount point
		{Port: 1, Mountpoint: "/m", Export: "data"}, // relative export
		{Port: 1, Mountpoint: "/m", Extra: "a b"},   // space inside an option
	} {
		if _, err := DarwinArgs(o); err == nil {
			t.Errorf("DarwinArgs(%+v) accepted", o)
		}
		if _, err := LinuxArgs(o); err == nil {
			t.Errorf("LinuxArgs(%+v) accepted", o)
		}
	}
}

func TestMergeOptionsDedup(t *testing.T) {
	got, err := MergeOptions([]string{"soft", "intr", "locallocks", "rw"}, "soft,nointr,nolock,ro,ro")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"soft", "nointr", "nolock", "ro"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeOptions = %q, want %q", got, want)
	}
}

func TestServeOnlyHint(t *testing.T) {
	h := ServeOnlyHint("127.0.0.1:40123", "/")
	for _, want := range []string{
		"/sbin/mount_nfs -o vers=3,tcp,port=40123,mountport=40123,locallocks",
		"sudo mount -t nfs -o vers=3,proto=tcp,port=40123,mountport=40123,mountproto=tcp,nolock",
		"127.0.0.1:/ ~/luks",
		"127.0.0.1:/ /mnt/luks",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("hint lacks %q:\n%s", want, h)
		}
	}
	if h := ServeOnlyHint("garbage", "/"); !strings.Contains(h, "garbage") {
		t.Errorf("bad addr hint: %s", h)
	}
}

func TestFilesystemsListNFS(t *testing.T) {
	without := "nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text4\nnodev\tnfsd\n"
	if FilesystemsListNFS(without) {
		t.Error("nfsd alone reported as an NFS client")
	}
	if !FilesystemsListNFS(without + "nodev\tnfs\nnodev\tnfs4\n") {
		t.Error("nfs not found")
	}
}

type call struct {
	cred *Cred
	argv string
}

// fakeRunner fails every command whose argv starts with a prefix in fail;
// the empty prefix fails only commands run as another user.
type fakeRunner struct {
	fail  []string
	calls []call
}

func (f *fakeRunner) Run(_ context.Context, cred *Cred, name string, args ...string) ([]byte, error) {
	argv := strings.Join(append([]string{name}, args...), " ")
	if cred != nil {
		c := *cred
		cred = &c
	}
	f.calls = append(f.calls, call{cred, argv})
	for _, p := range f.fail {
		if strings.HasPrefix(argv, p) && (p != "" || cred != nil) {
			return []byte("permission denied"), errors.New("exit status 1")
		}
	}
	return nil, nil
}

func TestMountAsUserThenRoot(t *testing.T) {
	o := Options{Mountpoint: "/Volumes/x", UID: 501, GID: 20}
	r := &fakeRunner{}
	if err := mountAsUserThenRoot(context.Background(), r, o, "/sbin/mount_nfs", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 || r.calls[0].cred == nil || *r.calls[0].cred != (Cred{501, 20}) {
		t.Errorf("calls = %+v, want one as 501:20", r.calls)
	}

	r = &fakeRunner{fail: []string{""}} // fails only as the user
	if err := mountAsUserThenRoot(context.Background(), r, o, "/sbin/mount_nfs", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 2 || r.calls[1].cred != nil {
		t.Errorf("calls = %+v, want user then root", r.calls)
	}

	r = &fakeRunner{fail: []string{"/sbin/mount_nfs"}}
	err := mountAsUserThenRoot(context.Background(), r, o, "/sbin/mount_nfs", []string{"a"})
	if err == nil || !strings.Contains(err.Error(), "/Volumes/x") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("err = %v, want the mount point and the tool's output", err)
	}

	r = &fakeRunner{}
	o.UID = 0 // not under sudo: straight to the current user
	mountAsUserThenRoot(context.Background(), r, o, "mount", nil)
	if len(r.calls) != 1 || r.calls[0].cred != nil {
		t.Errorf("calls = %+v", r.calls)
	}
}

func TestUnmountFallbacks(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		fn    func(context.Context, Runner, string, bool) error
		fail  []string
		force bool
		want  []string
		ok    bool
	}{
		{"darwin-clean", darwinUnmount, nil, false, []string{"/sbin/umount /v"}, true},
		{"darwin-busy", darwinUnmount, []string{"/sbin/umount"}, false, []string{"/sbin/umount /v"}, false},
		{"darwin-force", darwinUnmount, []string{"/sbin/umount /v"}, true, []string{"/sbin/umount /v", "/usr/sbin/diskutil unmount force /v"}, true},
		{"darwin-force-all-fail", darwinUnmount, []string{"/sbin/umount", "/usr/sbin/diskutil"}, true,
			[]string{"/sbin/umount /v", "/usr/sbin/diskutil unmount force /v", "/sbin/umount -f /v"}, false},
		{"linux-force", linuxUnmount, []string{"umount /v", "umount -f"}, true, []string{"umount /v", "umount -f /v", "umount -l /v"}, true},
		{"linux-clean", linuxUnmount, nil, true, []string{"umount /v"}, true},
	} {
		r := &fakeRunner{fail: tc.fail}
		err := tc.fn(ctx, r, "/v", tc.force)
		var argv []string
		for _, c := range r.calls {
			argv = append(argv, c.argv)
		}
		if (err == nil) != tc.ok || !reflect.DeepEqual(argv, tc.want) {
			t.Errorf("%s: err=%v calls=%q, want ok=%v %q", tc.name, err, argv, tc.ok, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "/v") {
			t.Errorf("%s: error %q does not name the mount point", tc.name, err)
		}
	}
}

func ExampleServeOnlyHint() {
	fmt.Println(strings.Split(ServeOnlyHint("127.0.0.1:2049", "/"), "\n")[0])
	// Output: The NFSv3 export 127.0.0.1:/ is served at 127.0.0.1:2049 (MOUNT and NFS on the same port). To mount it by hand:
}
