//go:build vmtest

package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/stackfix"
)

// TestStackRAID: mdadm RAID 1, 5 and 10 made by the guest's own mdadm, each written through NFS,
// stopped, mounted again and read back; a RAID 1 missing a member is assembled read-only and says
// so (writes refused, the member byte-identical); a RAID 0 missing a member is refused with the
// target to type.
func TestStackRAID(t *testing.T) {
	e := newStEnv(t)
	img := func(name string) string { return filepath.Join(e.dir, name) }
	arrays := []struct {
		name, level string
		members     int
	}{{"mirror", "1", 2}, {"parity", "5", 3}, {"stripe10", "10", 4}, {"stripe", "0", 2}}
	var disks []string
	var steps []stackfix.Step
	members := map[string][]string{}
	for i, a := range arrays {
		var devs []string
		for j := 0; j < a.members; j++ {
			p := img(fmt.Sprintf("%s%d.img", a.name, j))
			if err := stackfix.Sparse(p, 24); err != nil {
				t.Fatal(err)
			}
			devs = append(devs, fmt.Sprintf("/dev/vd%c", 'a'+len(disks)))
			disks = append(disks, p)
			members[a.name] = append(members[a.name], p)
		}
		md := fmt.Sprintf("/dev/md%d", i)
		create := append([]string{"mdadm", "--create", md, "--run", "--assume-clean", "--metadata=1.2", "--level=" + a.level,
			"--raid-devices=" + fmt.Sprint(a.members), "--name=" + a.name}, devs...)
		steps = append(steps, stackfix.Sh(create...), stackfix.Sh("mkfs.ext4", "-q", "-L", a.name, md), stackfix.Sh("mdadm", "--stop", md))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := stackfix.Run(ctx, e.dir, disks, stackfix.Spec{Steps: steps}); err != nil {
		t.Fatal(err)
	}
	t.Logf("RAID fixtures made in %s", time.Since(start).Round(time.Millisecond))
	join := func(ps []string) string { return strings.Join(ps, "+") }

	// list groups the members into their arrays.
	r := e.must(0, "", "list", "--json", join(members["parity"][:2]))
	if !strings.Contains(r.stdout, `"level": "raid5"`) || !strings.Contains(r.stdout, `"complete": false`) {
		t.Errorf("list of 2 of 3 RAID 5 members:\n%s", r.stdout)
	}

	for i, name := range []string{"mirror", "parity", "stripe10"} {
		e.roundTrip("", join(members[name]), name+".bin", noise(2<<20, byte(20+i)))
	}

	// Degraded RAID 1: read-only, said so, nothing written.
	one := members["mirror"][0]
	before := fileSha(t, one)
	r = e.must(0, "", "--no-mount", "--accel", "tcg", one)
	if !strings.Contains(r.stdout+r.stderr, "degraded") || !strings.Contains(r.stdout+r.stderr, "read-only") {
		t.Errorf("a degraded mount does not say it is read-only:\n%s", r)
	}
	fs := e.nfs(one)
	if got, err := fs.ReadFile("mirror.bin"); err != nil || shaHex(got) != shaHex(noise(2<<20, 20)) {
		t.Errorf("reading the degraded mirror: %d bytes, %v", len(got), err)
	}
	if err := fs.WriteFile("new.bin", []byte("x")); err == nil {
		t.Error("a write to a degraded array assembled read-only succeeded")
	}
	e.must(0, "", "stop", one)
	if fileSha(t, one) != before {
		t.Fatal("mounting a degraded mirror read-only changed the member")
	}

	// RAID 0 missing a member: refused, says what to connect.
	half := members["stripe"][0]
	before = fileSha(t, half)
	r = e.must(4, "", "--no-mount", "--accel", "tcg", half)
	e.oneLine(r, "has 1 of its 2 members")
	if fileSha(t, half) != before {
		t.Fatal("a refused RAID 0 mount changed the member")
	}
}
