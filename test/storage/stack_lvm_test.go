//go:build vmtest

package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/test/stackfix"
)

// luksFormat is a cheap but real argon2id LUKS2 format, as in the other fixtures.
func luksFormat(dev string) stackfix.Step {
	return stackfix.Step{Args: []string{"cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--pbkdf", "argon2id",
		"--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--key-file=-", dev}, Stdin: stPass}
}

func luksOpen(dev, name string) stackfix.Step {
	return stackfix.Step{Args: []string{"cryptsetup", "open", "--key-file=-", dev, name}, Stdin: stPass}
}

// makeFixtures builds, in one fixture VM, an MBR image with two ext4 partitions; a GPT image
// whose second partition is LUKS2 holding an LVM group (vg0: root, home); and two PV images
// spanning vg1, whose one volume is LUKS2 holding ext4.
func makeFixtures(t *testing.T, dir string) (mbr, gpt, pvA, pvB string) {
	mbr, gpt = filepath.Join(dir, "mbr.img"), filepath.Join(dir, "gpt.img")
	pvA, pvB = filepath.Join(dir, "pvA.img"), filepath.Join(dir, "pvB.img")
	if err := stackfix.WriteMBR(mbr, 48, []stackfix.Part{{SizeMiB: 16}, {}}); err != nil {
		t.Fatal(err)
	}
	if err := stackfix.WriteGPT(gpt, 64, []stackfix.Part{{SizeMiB: 16, Name: "boot"}, {Name: "crypt"}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pvA, pvB} {
		if err := stackfix.Sparse(p, 40); err != nil {
			t.Fatal(err)
		}
	}
	sh := stackfix.Sh
	lvm := stackfix.LVM
	steps := []stackfix.Step{
		sh("mkfs.ext4", "-q", "-L", "One", "/dev/vda1"),
		sh("mkfs.ext4", "-q", "-L", "Two", "/dev/vda2"),
		sh("mkfs.ext4", "-q", "-L", "Boot", "/dev/vdb1"),
		luksFormat("/dev/vdb2"), luksOpen("/dev/vdb2", "fx0"),
		lvm("pvcreate", "-y", "/dev/mapper/fx0"), lvm("vgcreate", "vg0", "/dev/mapper/fx0"),
		lvm("lvcreate", "-y", "-L", "12M", "-n", "root", "vg0"), lvm("lvcreate", "-y", "-l", "100%FREE", "-n", "home", "vg0"),
		sh("mkfs.ext4", "-q", "-L", "Root", "/dev/mapper/vg0-root"),
		sh("mkfs.ext4", "-q", "-L", "Home", "/dev/mapper/vg0-home"),
		lvm("vgchange", "-an", "vg0"), sh("cryptsetup", "close", "fx0"),
		lvm("pvcreate", "-y", "/dev/vdc", "/dev/vdd"), lvm("vgcreate", "vg1", "/dev/vdc", "/dev/vdd"),
		lvm("lvcreate", "-y", "-l", "100%FREE", "-n", "vault", "vg1"),
		luksFormat("/dev/mapper/vg1-vault"), luksOpen("/dev/mapper/vg1-vault", "fx1"),
		sh("mkfs.ext4", "-q", "-L", "Vault", "/dev/mapper/fx1"),
		sh("cryptsetup", "close", "fx1"), lvm("vgchange", "-an", "vg1"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := stackfix.Run(ctx, dir, []string{mbr, gpt, pvA, pvB}, stackfix.Spec{Steps: steps}); err != nil {
		t.Fatal(err)
	}
	t.Logf("fixtures made in %s", time.Since(start).Round(time.Millisecond))
	return mbr, gpt, pvA, pvB
}

// roundTrip mounts target (with extra flags), writes a file, stops, mounts again and reads it back.
func (e *stEnv) roundTrip(stdin, target, name string, data []byte, extra ...string) {
	e.t.Helper()
	args := append([]string{"--no-mount", "--accel", "tcg"}, extra...)
	e.must(0, stdin, append(args, target)...)
	if err := e.nfs(target).WriteFile(name, data); err != nil {
		e.t.Fatalf("write %s on %s: %v", name, target, err)
	}
	e.must(0, "", "stop", target)
	e.must(0, stdin, append(args, target)...)
	got, err := e.nfs(target).ReadFile(name)
	if err != nil || !bytes.Equal(got, data) {
		e.t.Fatalf("%s on %s after a restart: %d bytes (%v); want the %d written", name, target, len(got), err, len(data))
	}
	e.must(0, "", "stop", target)
}

// TestStackPartitionsAndLVM: MBR and GPT partition tables inside image files, LVM on LUKS (one
// passphrase, the volume named vg0/home), LUKS on an LVM group spanning two images, and the bad
// inputs: an ambiguous target, an unknown volume name, a missing PV, each with its own message,
// exit code and the images byte-identical.
func TestStackPartitionsAndLVM(t *testing.T) {
	e := newStEnv(t)
	mbr, gpt, pvA, pvB := makeFixtures(t, e.dir)

	e.checkList(mbr, gpt, pvA, pvB)

	// Ambiguous: two filesystems, no --volume. The message says what to type.
	before := fileSha(t, mbr)
	r := e.must(1, "", "--no-mount", "--accel", "tcg", mbr)
	msg := e.oneLine(r, "--volume")
	for _, want := range []string{"2 filesystems", `p1 (ext4 "One"`, `p2 (ext4 "Two"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("ambiguity message lacks %q: %s", want, msg)
		}
	}
	if fileSha(t, mbr) != before {
		t.Fatal("a refused mount changed the MBR image")
	}
	e.roundTrip("", mbr, "two.bin", noise(1<<20, 10), "--volume", "Two")

	// LVM on LUKS in GPT partition 2: one passphrase; an unknown name lists the volumes.
	r = e.must(4, stPass+"\n", "--no-mount", "--accel", "tcg", "--volume", "vg0/nope", gpt)
	msg = e.oneLine(r, `no volume "vg0/nope"`)
	for _, want := range []string{"vg0/home", "vg0/root", "p1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("unknown-volume message lacks %q: %s", want, msg)
		}
	}
	e.roundTrip(stPass+"\n", gpt, "home.bin", noise(2<<20, 11), "--volume", "vg0/home")

	// LUKS on LVM across two images: the only volume, no --volume needed.
	both := pvA + "+" + pvB
	e.roundTrip(stPass+"\n", both, "vault.bin", noise(3<<20, 12))

	// One PV missing: refused before anything is activated, the image untouched.
	beforeA := fileSha(t, pvA)
	r = e.must(4, stPass+"\n", "--no-mount", "--accel", "tcg", pvA)
	if msg := e.oneLine(r, "missing 1 of its 2 physical volumes"); !regexp.MustCompile(`PV UUID [0-9A-Za-z]{6}(-[0-9A-Za-z]{4}){5}-[0-9A-Za-z]{6}`).MatchString(msg) {
		t.Errorf("the missing-PV error does not name the PV by its UUID: %s", msg)
	}
	if fileSha(t, pvA) != beforeA {
		t.Fatal("a refused mount changed the PV image")
	}
}

// checkList: `luksmount list --json` on the fixtures shows each kind, the partitions with what
// they hold (LUKS2 with its KDF memory), and the two PVs grouped into vg1 with the target to type.
func (e *stEnv) checkList(mbr, gpt, pvA, pvB string) {
	t := e.t
	r := e.must(0, "", "list", "--json", mbr, gpt, pvA, pvB)
	var out struct {
		Disks []struct {
			Device     string `json:"device"`
			Type       string `json:"type"`
			Partitions []struct {
				Volume, Type, Label string
				KDF                 int `json:"kdf_memory_kib"`
			} `json:"partitions"`
		} `json:"disks"`
		Groups []struct {
			Kind, Name, Target string
			Members            []string
			Volumes            []string
			Complete           bool
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Disks) != 4 {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, d := range out.Disks {
		desc := d.Type
		for _, p := range d.Partitions {
			desc += fmt.Sprintf(" %s:%s:%s:%d", p.Volume, p.Type, p.Label, p.KDF)
		}
		got[d.Device] = desc
	}
	want := map[string]string{
		mbr: "mbr p1:ext4:One:0 p2:ext4:Two:0", gpt: "gpt p1:ext4:Boot:0 p2:luks2::32768",
		pvA: "lvm2-pv", pvB: "lvm2-pv",
	}
	for dev, w := range want {
		if got[dev] != w {
			t.Errorf("list: %s = %q; want %q", filepath.Base(dev), got[dev], w)
		}
	}
	if len(out.Groups) != 1 || out.Groups[0].Kind != "lvm" || out.Groups[0].Name != "vg1" || !out.Groups[0].Complete ||
		out.Groups[0].Target != pvA+"+"+pvB || strings.Join(out.Groups[0].Volumes, ",") != "vg1/vault" {
		t.Errorf("list groups = %+v; want vg1 over both PVs with vg1/vault", out.Groups)
	}
	// One PV alone: the group is listed incomplete.
	r = e.must(0, "", "list", "--json", pvA)
	if !strings.Contains(r.stdout, `"complete": false`) {
		t.Errorf("list of one PV of two does not say the group is incomplete:\n%s", r.stdout)
	}
}
