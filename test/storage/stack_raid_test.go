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

// TestStackRAID: mdadm RAID 0, 1, 5 and 10 made by the guest's own mdadm, each written through
// NFS, stopped, mounted again and read back (RAID 0 stopped by naming one member); a RAID 1
// missing a member is written with --allow-degraded, then without it is assembled read-only and
// says so (writes refused, the member byte-identical); a RAID 0 missing a member is refused with
// the target to type. A RAID 1 of three LUKS members with different passphrases asks for the second
// by name (three wrong ones: exit 3, the member unchanged) and round-trips with all three; Return at
// the second's prompt leaves only it locked (the third is still asked for) and the mirror comes up
// degraded, read-only, from the other two.
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
	// A RAID 1 of three LUKS members made with different passphrases.
	pair := []string{img("pairA.img"), img("pairB.img"), img("pairC.img")}
	pairPass := []string{stPass, "second member passphrase 9", "third member passphrase 8"}
	var mappers []string
	for i, p := range pair {
		if err := stackfix.Sparse(p, 24); err != nil {
			t.Fatal(err)
		}
		dev, m := fmt.Sprintf("/dev/vd%c", 'a'+len(disks)), fmt.Sprintf("pair%d", i)
		disks = append(disks, p)
		mappers = append(mappers, "/dev/mapper/"+m)
		steps = append(steps,
			// PBKDF2 at cryptsetup's floor: these members test the prompts, not the KDF (argon2
			// costs seconds a try under TCG, and a wrong passphrase is tried on every locked member).
			stackfix.Step{Args: []string{"cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2", "--hash", "sha256", "--pbkdf-force-iterations", "1000", "--key-file=-", dev}, Stdin: pairPass[i]},
			stackfix.Step{Args: []string{"cryptsetup", "open", "--key-file=-", dev, m}, Stdin: pairPass[i]})
	}
	steps = append(steps,
		stackfix.Sh(append([]string{"mdadm", "--create", "/dev/md9", "--run", "--assume-clean", "--metadata=1.2", "--level=1", "--raid-devices=3", "--name=lukspair"}, mappers...)...),
		stackfix.Sh("mkfs.ext4", "-q", "-L", "LuksPair", "/dev/md9"), stackfix.Sh("mdadm", "--stop", "/dev/md9"),
		stackfix.Sh("cryptsetup", "close", "pair0"), stackfix.Sh("cryptsetup", "close", "pair1"), stackfix.Sh("cryptsetup", "close", "pair2"))
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

	// RAID 0 with all members: written, stopped by naming one member only, read back.
	stripe := join(members["stripe"])
	data := noise(2<<20, 24)
	e.must(0, "", "--no-mount", "--accel", "tcg", stripe)
	if err := e.nfs(stripe).WriteFile("stripe.bin", data); err != nil {
		t.Fatal(err)
	}
	e.must(0, "", "stop", members["stripe"][1])
	e.must(0, "", "--no-mount", "--accel", "tcg", stripe)
	if got, err := e.nfs(stripe).ReadFile("stripe.bin"); err != nil || shaHex(got) != shaHex(data) {
		t.Fatalf("stripe.bin on RAID 0 after a restart: %d bytes, %v", len(got), err)
	}
	e.must(0, "", "stop", members["stripe"][0])

	// Degraded RAID 1 with --allow-degraded: read-write, and said so.
	one := members["mirror"][0]
	r = e.must(0, "", "--no-mount", "--accel", "tcg", "--allow-degraded", one)
	if strings.Contains(r.stdout+r.stderr, "read-only") || !strings.Contains(r.stdout+r.stderr, "degraded") {
		t.Errorf("--allow-degraded: want a read-write mount that says the array is degraded:\n%s", r)
	}
	degraded := noise(512<<10, 25)
	if err := e.nfs(one).WriteFile("degraded.bin", degraded); err != nil {
		t.Fatalf("write to a degraded mirror with --allow-degraded: %v", err)
	}
	e.must(0, "", "stop", one)

	// Degraded RAID 1: read-only, said so, nothing written; it still holds the write above.
	before := fileSha(t, one)
	r = e.must(0, "", "--no-mount", "--accel", "tcg", one)
	if !strings.Contains(r.stdout+r.stderr, "degraded") || !strings.Contains(r.stdout+r.stderr, "read-only") {
		t.Errorf("a degraded mount does not say it is read-only:\n%s", r)
	}
	fs := e.nfs(one)
	if got, err := fs.ReadFile("mirror.bin"); err != nil || shaHex(got) != shaHex(noise(2<<20, 20)) {
		t.Errorf("reading the degraded mirror: %d bytes, %v", len(got), err)
	}
	if got, err := fs.ReadFile("degraded.bin"); err != nil || shaHex(got) != shaHex(degraded) {
		t.Errorf("degraded.bin after the --allow-degraded session: %d bytes, %v", len(got), err)
	}
	if err := fs.WriteFile("new.bin", []byte("x")); err == nil {
		t.Error("a write to a degraded array assembled read-only succeeded")
	}
	e.must(0, "", "stop", one)
	if fileSha(t, one) != before {
		t.Fatal("mounting a degraded mirror read-only changed the member")
	}

	// LUKS members with different passphrases: the second is asked for by name, three tries.
	pairT := join(pair)
	before = fileSha(t, pair[1])
	r = e.must(3, pairPass[0]+"\nwrong 1\nwrong 2\nwrong 3\n", "--no-mount", "--accel", "tcg", pairT)
	e.oneLine(r, "wrong passphrase for "+pair[1]+" (3 attempts)")
	if fileSha(t, pair[1]) != before {
		t.Fatal("refused passphrases changed the second member")
	}
	e.roundTrip(pairPass[0]+"\n"+pairPass[1]+"\n"+pairPass[2]+"\n", pairT, "pair.bin", noise(1<<20, 26))

	// Return at the second member's prompt: only it stays locked, the third is asked for, and the
	// mirror comes up from the other two, degraded and read-only; the second is unchanged.
	before = fileSha(t, pair[1])
	r = e.must(0, pairPass[0]+"\n\n"+pairPass[2]+"\n", "--no-mount", "--accel", "tcg", pairT)
	for _, want := range []string{pair[1] + " stays locked", "degraded (2 of 3 members)", "read-only"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("Return at the second member: output lacks %q:\n%s", want, r)
		}
	}
	if got, err := e.nfs(pairT).ReadFile("pair.bin"); err != nil || shaHex(got) != shaHex(noise(1<<20, 26)) {
		t.Errorf("pair.bin from two of three members: %d bytes, %v", len(got), err)
	}
	e.must(0, "", "stop", pairT)
	if fileSha(t, pair[1]) != before {
		t.Fatal("the member left locked changed")
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
