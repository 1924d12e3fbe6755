package nfsmount

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDarwinArgs(t *testing.T) {
	got, err := DarwinArgs(Options{Port: 40123, Mountpoint: "/Volumes/backup"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-o",
		"vers=3,tcp,port=40123,mountport=40123,locallocks,nfc,rsize=1048576,wsize=1048576,readahead=16,soft,intr,timeo=300,retrans=3,deadtimeout=180,noresvport,browse",
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
		"deadtimeout=180", "noresvport", "browse", "ro", "noowners", "hard", "nolocks", "noac", "timeo=100", "rsize=131072", "nfc"}
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

// The user's mount_nfs runs as the user with the user's groups; a failure is
// reported, never retried as root (finding 4); resvport asks for root.
func TestRunMount(t *testing.T) {
	ctx := context.Background()
	o := Options{Mountpoint: "/Volumes/x", UID: 501, GID: 20, Groups: []uint32{12, 20, 61}}
	r := &fakeRunner{}
	if err := runMount(ctx, r, o, "/sbin/mount_nfs", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 || r.calls[0].cred == nil || r.calls[0].cred.UID != 501 || r.calls[0].cred.GID != 20 ||
		!reflect.DeepEqual(r.calls[0].cred.Groups, []uint32{20, 12, 61}) {
		t.Errorf("calls = %+v, want one as 501:20 with groups [20 12 61]", r.calls)
	}

	r = &fakeRunner{fail: []string{""}} // fails only as the user
	err := runMount(ctx, r, o, "/sbin/mount_nfs", []string{"a"})
	if len(r.calls) != 1 {
		t.Errorf("calls = %+v: retried after the user's mount failed", r.calls)
	}
	for _, want := range []string{"/Volumes/x", "as uid 501", "permission denied", "does not retry as root", "--nfs-options resvport"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q in it", err, want)
		}
	}

	r = &fakeRunner{}
	o.Extra = "rsize=65536,resvport"
	runMount(ctx, r, o, "/sbin/mount_nfs", nil)
	if len(r.calls) != 1 || r.calls[0].cred != nil {
		t.Errorf("resvport: calls = %+v, want one as root", r.calls)
	}
	r = &fakeRunner{}
	o.Extra = "resvport,noresvport"
	runMount(ctx, r, o, "/sbin/mount_nfs", nil)
	if len(r.calls) != 1 || r.calls[0].cred == nil {
		t.Errorf("resvport then noresvport: calls = %+v, want one as the user", r.calls)
	}

	r = &fakeRunner{}
	o = Options{Mountpoint: "/m", UID: 501, GID: 20} // groups unknown: just the primary one
	runMount(ctx, r, o, "/sbin/mount_nfs", nil)
	if len(r.calls) != 1 || !reflect.DeepEqual(r.calls[0].cred.Groups, []uint32{20}) {
		t.Errorf("calls = %+v, want groups [20]", r.calls)
	}

	r = &fakeRunner{fail: []string{"mount"}}
	o.UID = 0 // not under sudo (or Linux): the current user
	err = runMount(ctx, r, o, "mount", nil)
	if len(r.calls) != 1 || r.calls[0].cred != nil || err == nil || strings.Contains(err.Error(), "retry") {
		t.Errorf("calls = %+v, err %v", r.calls, err)
	}
}

// The real executor hands the child exactly the groups asked for, never the parent's.
func TestSetCredGroups(t *testing.T) {
	cmd := exec.Command("true")
	setCred(cmd, &Cred{UID: 501, GID: 20, Groups: []uint32{20, 12}})
	c := cmd.SysProcAttr.Credential
	if c.Uid != 501 || c.Gid != 20 || c.NoSetGroups || !reflect.DeepEqual(c.Groups, []uint32{20, 12}) {
		t.Errorf("credential = %+v", c)
	}
	cmd = exec.Command("true")
	setCred(cmd, &Cred{UID: 501, GID: 20})
	if c := cmd.SysProcAttr.Credential; c.NoSetGroups || !reflect.DeepEqual(c.Groups, []uint32{20}) {
		t.Errorf("credential without groups = %+v, want groups [20]", c)
	}
}

func TestUserGroups(t *testing.T) {
	r := &idRunner{out: "20 12 61 79 80 81 98 701 33 100 204 250 395 398 399 400\n"}
	gs := userGroups(context.Background(), r, 501)
	if len(gs) != 16 || gs[0] != 20 || gs[15] != 400 || r.argv != "/usr/bin/id -G 501" || r.cred != nil {
		t.Errorf("groups %v from %q as %+v", gs, r.argv, r.cred)
	}
	if gs := userGroups(context.Background(), &idRunner{err: errors.New("no such user")}, 501); gs != nil {
		t.Errorf("groups %v after id failed", gs)
	}
	if _, err := ParseIDGroups("20 staff"); err == nil {
		t.Error("ParseIDGroups accepted a name")
	}
}

type idRunner struct {
	out, argv string
	cred      *Cred
	err       error
}

func (r *idRunner) Run(_ context.Context, cred *Cred, name string, args ...string) ([]byte, error) {
	r.argv, r.cred = strings.Join(append([]string{name}, args...), " "), cred
	return []byte(r.out), r.err
}

// Options a user may set in /etc/nfs.conf are applied before ours, so ours
// override them; a user's own --nfs-options override ours.
func TestDarwinOptionsOverrideNFSConf(t *testing.T) {
	got, _ := DarwinOptions(Options{Port: 1, Mountpoint: "/m"})
	if !slices.Contains(got, "noresvport") || !slices.Contains(got, "browse") {
		t.Errorf("base options %q lack noresvport/browse", got)
	}
	got, _ = DarwinOptions(Options{Port: 1, Mountpoint: "/m", Extra: "nobrowse,resvport"})
	if slices.Contains(got, "browse") || slices.Contains(got, "noresvport") || !slices.Contains(got, "nobrowse") || !slices.Contains(got, "resvport") {
		t.Errorf("user overrides lost: %q", got)
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
