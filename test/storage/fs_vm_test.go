//go:build vmtest

// Package storage checks each storage stack (filesystems; partitions, LVM, RAID, BitLocker,
// VeraCrypt; trim and resize) in a real guest: made by the guest's own tools, written over NFS,
// stopped, mounted again, read back byte for byte.
package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/selftest"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/libnfs"
	"github.com/luksmount/luksmount/test/vmtest"
)

// fsPassphrase is only ever used for throwaway test images.
const fsPassphrase = "correct horse battery staple"

// fsCase is one filesystem on its own disk of the shared VM.
type fsCase struct {
	name  string // subtest name
	fs    string // FormatRequest.FS
	size  int64
	luks  bool
	label string
	// want: blkid TYPE and, for FAT, the FAT width mkfs.fat picked by size.
	wantType string
	fatBits  string
}

var fsCases = []fsCase{
	{name: "btrfs", fs: "btrfs", size: 256 << 20, luks: true, label: "BTR", wantType: "btrfs"},
	{name: "xfs", fs: "xfs", size: 340 << 20, luks: true, label: "XFS", wantType: "xfs"},
	{name: "exfat", fs: "exfat", size: 64 << 20, luks: true, label: "EXF", wantType: "exfat"},
	{name: "fat12", fs: "vfat", size: 4 << 20, label: "F12", wantType: "vfat", fatBits: "FAT12"},
	{name: "fat16", fs: "vfat", size: 64 << 20, luks: true, label: "F16", wantType: "vfat", fatBits: "FAT16"},
	{name: "fat32", fs: "vfat", size: 600 << 20, label: "F32", wantType: "vfat", fatBits: "FAT32"},
	{name: "ntfs", fs: "ntfs", size: 64 << 20, label: "NTFS", wantType: "ntfs"},
}

// fsFiles is what each filesystem gets: several WRITEs' worth, an empty file, a non-ASCII
// name every one of them can hold (directories, links and the rest: the kernel-client workload).
func fsFiles(diskSize int64) map[string][]byte {
	big := make([]byte, min(3<<20+12345, diskSize/4+12345))
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	return map[string][]byte{
		"hello.txt":   []byte("hello from the host\n"),
		"big.bin":     big,
		"Ünïcødé.txt": []byte("names survive\n"),
		"empty":       nil,
	}
}

type fsVM struct {
	*vmtest.VM
	disks []string
}

func bootFS(t *testing.T, disks []string) *fsVM {
	t.Helper()
	var qd []qemu.Disk
	for i, d := range disks {
		qd = append(qd, qemu.Disk{Path: d, Serial: fmt.Sprintf("fs%d", i)})
	}
	v := vmtest.Start(t, vmtest.Options{
		Arch: "amd64", MemoryMiB: qemu.MemoryForKDF(32), CPUs: 2, Disks: qd,
		Lifetime: 20 * time.Minute, ReadyTimeout: 2 * time.Minute, HostVersion: "storage",
	})
	return &fsVM{VM: v, disks: disks}
}

func dev(i int) string { return "/dev/vd" + string(rune('a'+i)) }

func nfsClient(v *vmtest.VM, export string) libnfs.Client {
	return libnfs.Client{Addr: v.NFSAddr(), Export: export, UID: os.Getuid(), GID: os.Getgid()}
}

// open unlocks (if LUKS) and mounts case i, then serves it.
func (v *fsVM) open(t *testing.T, ctx context.Context, i int, c fsCase, opts ...string) (*control.MountReply, libnfs.Client) {
	t.Helper()
	return v.openChecked(t, ctx, i, c, false, opts...)
}

// openChecked is open, and with check, a read-only `check` of the unlocked, unmounted
// filesystem first, which must find it clean.
func (v *fsVM) openChecked(t *testing.T, ctx context.Context, i int, c fsCase, check bool, opts ...string) (*control.MountReply, libnfs.Client) {
	t.Helper()
	cl := v.Control()
	target := dev(i)
	if c.luks {
		if _, err := cl.Unlock(ctx, control.UnlockRequest{Device: dev(i)}, []byte(fsPassphrase)); err != nil {
			t.Fatalf("%s: unlock: %v", c.name, err)
		}
		target = ""
	}
	if check {
		r, err := cl.Check(ctx, control.CheckRequest{Device: target})
		if err != nil || !r.Clean || r.FSType != c.wantType {
			t.Fatalf("%s: check = %+v, %v; want a clean %s", c.name, r, err, c.wantType)
		}
		t.Logf("%s: check clean: %s", c.name, r.Tool)
	}
	m, err := cl.Mount(ctx, control.MountRequest{Device: target, Options: opts})
	if err != nil {
		t.Fatalf("%s: mount: %v", c.name, err)
	}
	if m.FSType != c.wantType || m.Label != c.label && !strings.EqualFold(m.Label, c.label) {
		t.Fatalf("%s: mounted %+v; want %s labelled %s", c.name, m, c.wantType, c.label)
	}
	s, err := cl.Serve(ctx, control.ServeRequest{})
	if err != nil {
		t.Fatalf("%s: serve: %v", c.name, err)
	}
	return m, nfsClient(v.VM, s.Export)
}

// close stops serving, unmounts and closes, leaving the VM up for the next case.
func (v *fsVM) close(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	r, err := v.Control().Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true})
	if err != nil || !r.Synced || !r.Unmounted || !r.Closed {
		t.Fatalf("%s: stop = %+v, %v; want synced, unmounted, closed", name, r, err)
	}
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestFilesystemsWriteStopReadBack formats each filesystem with the guest's own mkfs (format
// --fs), writes files over NFS, stops; boots again, mounts each and reads every byte back. One
// VM per boot serves every filesystem in turn (each on its own disk), so the boots are shared
// without sharing a mount. The second boot also checks what the guest refuses: a hibernated
// NTFS volume is mounted read-only (and left byte-identical), a filesystem type the guest
// cannot mount is refused with its name and the drive is left untouched.
func TestFilesystemsWriteStopReadBack(t *testing.T) {
	var disks []string
	for _, c := range fsCases {
		disks = append(disks, vmtest.NewDisk(t, c.size))
	}
	hib := len(disks) // an NTFS volume Windows left hibernated
	disks = append(disks, vmtest.NewDisk(t, 64<<20))
	iso := len(disks) // a filesystem type the guest cannot mount (ISO 9660)
	disks = append(disks, isoDisk(t))
	dirty := len(disks) // an NTFS volume Windows marked for chkdsk (dirty flag set between boots)
	disks = append(disks, vmtest.NewDisk(t, 64<<20))
	fatBad, exfatBad := len(disks), len(disks)+1 // damaged between boots, for check
	disks = append(disks, vmtest.NewDisk(t, 64<<20), vmtest.NewDisk(t, 64<<20))
	damaged := []fsCase{{name: "fat16-damaged", fs: "vfat", label: "BAD", wantType: "vfat"},
		{name: "exfat-damaged", fs: "exfat", label: "BADX", wantType: "exfat"}}

	start := time.Now()
	v := bootFS(t, disks)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cl := v.Control()
	for i, c := range fsCases {
		t0 := time.Now()
		fr := control.FormatRequest{Device: dev(i), Type: "none", FS: c.fs, Label: c.label}
		if c.luks {
			fr.Type, fr.PBKDF, fr.PBKDFMemoryKiB, fr.PBKDFForceIterations = "luks2", "argon2id", 32768, 4
		}
		if _, err := cl.Format(ctx, fr, []byte(fsPassphrase)); err != nil {
			t.Fatalf("%s: format: %v", c.name, err)
		}
		files := fsFiles(c.size)
		v.open(t, ctx, i, c)
		// go-nfs-client: WRITE + COMMIT per file, then a RENAME.
		w, err := selftest.DialNFS(v.NFSAddr(), "/")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, name := range sortedKeys(files) {
			if err := w.WriteFile(name, files[name]); err != nil {
				t.Fatalf("%s: write %s: %v", c.name, name, err)
			}
		}
		if err := w.WriteFile("to-rename", []byte("renamed\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.Rename("to-rename", "renamed.txt"); err != nil {
			t.Fatalf("%s: rename: %v", c.name, err)
		}
		w.Close()
		v.close(t, ctx, c.name)
		t.Logf("%s: format + write %d files: %.1fs", c.name, len(files)+1, time.Since(t0).Seconds())
	}
	// The hibernated NTFS volume: made here, hiberfil.sys written with Windows' "hibr" header.
	ntfs := fsCase{name: "ntfs-hibernated", fs: "ntfs", label: "HIB", wantType: "ntfs"}
	if _, err := cl.Format(ctx, control.FormatRequest{Device: dev(hib), Type: "none", FS: "ntfs", Label: "HIB"}, nil); err != nil {
		t.Fatalf("format ntfs: %v", err)
	}
	v.open(t, ctx, hib, ntfs)
	hdr := make([]byte, 4096)
	copy(hdr, "hibr")
	w, err := selftest.DialNFS(v.NFSAddr(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile("hiberfil.sys", hdr); err != nil {
		t.Fatal(err)
	}
	w.Close()
	v.close(t, ctx, ntfs.name)
	dirtyCase := fsCase{name: "ntfs-dirty", fs: "ntfs", label: "DIRTY", wantType: "ntfs"}
	if _, err := cl.Format(ctx, control.FormatRequest{Device: dev(dirty), Type: "none", FS: "ntfs", Label: "DIRTY"}, nil); err != nil {
		t.Fatalf("format ntfs: %v", err)
	}
	_, nfs := v.open(t, ctx, dirty, dirtyCase)
	if err := nfs.Put(ctx, "before.txt", []byte("written before Windows marked it\n")); err != nil {
		t.Fatal(err)
	}
	v.close(t, ctx, dirtyCase.name)
	for j, c := range damaged {
		if _, err := cl.Format(ctx, control.FormatRequest{Device: dev(fatBad + j), Type: "none", FS: c.fs, Label: c.label}, nil); err != nil {
			t.Fatalf("format %s: %v", c.name, err)
		}
		_, nfs := v.open(t, ctx, fatBad+j, c)
		if err := nfs.Put(ctx, "keep.txt", []byte("kept through the repair\n")); err != nil {
			t.Fatal(err)
		}
		v.close(t, ctx, c.name)
	}
	v.ShutdownClean(t)
	damageFAT16(t, disks[fatBad])
	damageExFAT(t, disks[exfatBad])
	t.Logf("first boot (format and write all): %.1fs", time.Since(start).Seconds())
	setNTFSDirty(t, disks[dirty])
	hibSHA, isoSHA, dirtySHA := fileSHA(t, disks[hib]), fileSHA(t, disks[iso]), fileSHA(t, disks[dirty])

	start = time.Now()
	v = bootFS(t, disks)
	cl = v.Control()
	for i, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			files := fsFiles(c.size)
			_, nfs := v.openChecked(t, ctx, i, c, true, "noatime")
			for name, want := range files {
				got, err := nfs.Cat(ctx, name)
				if err != nil {
					t.Fatalf("read %s back: %v", name, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s read back: sha256 %s (%d bytes), want %s (%d bytes)", name, sha(got), len(got), sha(want), len(want))
				}
			}
			if got, err := nfs.Cat(ctx, "renamed.txt"); err != nil || string(got) != "renamed\n" {
				t.Fatalf("renamed file: %q, %v", got, err)
			}
			names, err := nfs.Ls(ctx, "/")
			if err != nil {
				t.Fatal(err)
			}
			names = slices.DeleteFunc(names, func(n string) bool { return n == "lost+found" })
			slices.Sort(names)
			want := []string{"big.bin", "empty", "hello.txt", "renamed.txt", "Ünïcødé.txt"}
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Fatalf("root listing %q; want %q", names, want)
			}
			if c.fatBits != "" {
				checkFATBits(t, disks[i], c)
			}
			v.close(t, ctx, c.name)
			t.Logf("mount + read back + stop: %.1fs", time.Since(t0).Seconds())
		})
	}
	// Asked for read-write, the hibernated volume (ntfs-3g falls back to read-only by itself:
	// the agent must notice) and the dirty one (ntfs-3g ignores the flag: the agent reads it)
	// are mounted read-only, say why and what to do in Windows, refuse writes with ROFS and stay
	// byte-identical.
	for _, c := range []struct {
		i       int
		c       fsCase
		file    string
		because string
	}{{hib, ntfs, "hiberfil.sys", "hibernated"}, {dirty, dirtyCase, "before.txt", "chkdsk"}} {
		t.Run(c.c.name, func(t *testing.T) {
			m, nfs := v.open(t, ctx, c.i, c.c)
			defer v.close(t, ctx, c.c.name)
			if !m.ReadOnly || !strings.Contains(m.Notice, c.because) || !strings.Contains(m.Notice, "Shift+Shut down") || strings.Contains(m.Notice, "\n") {
				t.Fatalf("mount reply %+v; want read-only with a one-line notice saying %q and what to do in Windows", m, c.because)
			}
			t.Logf("notice: %s", m.Notice)
			if _, err := nfs.Cat(ctx, c.file); err != nil {
				t.Fatalf("read %s: %v", c.file, err)
			}
			w, err := selftest.DialNFS(v.NFSAddr(), "/")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.WriteFile("new.txt", []byte("x")); err == nil || !strings.Contains(err.Error(), "ROFS") {
				t.Fatalf("write to the read-only NTFS volume: %v; want NFS3ERR_ROFS", err)
			}
		})
	}
	// check finds the damage without writing, --repair repairs it, and the files are there.
	// NTFS: ntfsfix -n checks (the read-back above), but no repair is ever run.
	for j, c := range damaged {
		t.Run(c.name, func(t *testing.T) {
			d := disks[fatBad+j]
			before := fileSHA(t, d)
			r, err := cl.Check(ctx, control.CheckRequest{Device: dev(fatBad + j)})
			if err != nil || r.Clean || r.FSType != c.wantType {
				t.Fatalf("check of the damaged %s = %+v, %v; want problems found", c.fs, r, err)
			}
			t.Logf("%s found (exit %d): %s", r.Tool, r.ExitCode, r.Output)
			if r.NoRepair != "" {
				t.Fatalf("the guest refuses to repair %s: %q", c.fs, r.NoRepair)
			}
			if fileSHA(t, d) != before {
				t.Fatal("a read-only check changed the drive")
			}
			if r, err = cl.Check(ctx, control.CheckRequest{Device: dev(fatBad + j), Repair: true}); err != nil || !r.Repaired {
				t.Fatalf("repair = %+v, %v; want repaired", r, err)
			}
			if r, err = cl.Check(ctx, control.CheckRequest{Device: dev(fatBad + j)}); err != nil || !r.Clean {
				t.Fatalf("check after the repair = %+v, %v; want clean", r, err)
			}
			_, nfs := v.open(t, ctx, fatBad+j, c)
			if got, err := nfs.Cat(ctx, "keep.txt"); err != nil || string(got) != "kept through the repair\n" {
				t.Fatalf("keep.txt after the repair: %q, %v", got, err)
			}
			v.close(t, ctx, c.name)
		})
	}
	t.Run("ntfs-repair-refused", func(t *testing.T) {
		// The read-only pass already says a repair will be refused, so the host never asks.
		if r, err := cl.Check(ctx, control.CheckRequest{Device: dev(hib)}); err != nil || !(r.Clean || strings.Contains(r.NoRepair, "chkdsk")) {
			t.Fatalf("read-only check of NTFS = %+v, %v; want clean, or problems with the chkdsk advice in no_repair", r, err)
		}
		_, err := cl.Check(ctx, control.CheckRequest{Device: dev(hib), Repair: true})
		if err == nil || !strings.Contains(err.Error(), "chkdsk") {
			t.Fatalf("check --repair on NTFS = %v; want a refusal that says to use chkdsk", err)
		}
	})
	t.Run("unsupported-type", func(t *testing.T) {
		_, err := cl.Mount(ctx, control.MountRequest{Device: dev(iso)})
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Code != control.CodeUnsupportedFS || !strings.Contains(ce.Message, "iso9660") {
			t.Fatalf("mount of ISO 9660 = %v; want unsupported-filesystem naming iso9660", err)
		}
		st, err := cl.Status(ctx)
		if err != nil || st.State != control.StateReady {
			t.Fatalf("status after the refusal: %+v, %v; want ready", st, err)
		}
	})
	v.ShutdownClean(t)
	t.Logf("second boot (read back all): %.1fs", time.Since(start).Seconds())
	if got := fileSHA(t, disks[hib]); got != hibSHA {
		t.Error("the NTFS volume changed under a read-only mount")
	}
	if got := fileSHA(t, disks[dirty]); got != dirtySHA {
		t.Error("the dirty NTFS volume changed under its read-only mount")
	}
	if got := fileSHA(t, disks[iso]); got != isoSHA {
		t.Error("the ISO 9660 disk changed after a refused mount")
	}
}

// isoDisk is a disk whose only content is an ISO 9660 primary volume descriptor (blkid's
// iso9660), a type the guest image has no driver for.
func isoDisk(t *testing.T) string {
	p := vmtest.NewDisk(t, 4<<20)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pvd := make([]byte, 2048)
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	copy(pvd[40:], "LUKSMOUNTTEST                   ")
	term := make([]byte, 2048)
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	f.WriteAt(pvd, 16*2048)
	f.WriteAt(term, 17*2048)
	return p
}

// checkFATBits reads the FAT width from the boot sector's file-system type field (at 0x36 for
// FAT12/16, 0x52 for FAT32) of a disk without LUKS.
func checkFATBits(t *testing.T, disk string, c fsCase) {
	t.Helper()
	if c.luks {
		return // encrypted: the boot sector is not readable from the host
	}
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	f.ReadAt(b, 0)
	if !bytes.Contains(b[0x36:0x3e], []byte(c.fatBits)) && !bytes.Contains(b[0x52:0x5a], []byte(c.fatBits)) {
		t.Fatalf("boot sector says %q / %q; want %s", b[0x36:0x3e], b[0x52:0x5a], c.fatBits)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

// setNTFSDirty sets VOLUME_IS_DIRTY in $Volume (in $MFT and in $MFTMirr, which ntfs-3g compares),
// as Windows does when chkdsk must run: no Linux tool sets it (ntfsfix only clears it).
func setNTFSDirty(t *testing.T, disk string) {
	t.Helper()
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := fsops.ReadNTFSVolumeInfo(f)
	if err != nil || v.FlagsAt[0] == 0 || v.FlagsAt[1] == 0 || v.Flags&fsops.NTFSVolumeDirty != 0 {
		t.Fatalf("$Volume of a fresh NTFS: %+v, %v; want clean flags outside the update sequence", v, err)
	}
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v.Flags|fsops.NTFSVolumeDirty)
	for _, at := range v.FlagsAt {
		if _, err := f.WriteAt(b[:], at); err != nil {
			t.Fatal(err)
		}
	}
	if v, err = fsops.ReadNTFSVolumeInfo(f); err != nil || v.Flags&fsops.NTFSVolumeDirty == 0 {
		t.Fatalf("dirty flag not set: %+v, %v", v, err)
	}
}

// bootSector opens disk for writing and returns it with its first sector.
func bootSector(t *testing.T, disk string) (*os.File, []byte) {
	t.Helper()
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		t.Fatal(err)
	}
	return f, bs
}

// damageFAT16 makes FAT1 differ from FAT2 with a cluster pointing past the end, which
// fsck.fat -n reports (exit 1) and -a repairs.
func damageFAT16(t *testing.T, disk string) {
	t.Helper()
	f, bs := bootSector(t, disk)
	if string(bs[0x36:0x3e]) != "FAT16   " {
		t.Fatalf("the 64 MiB FAT disk is %q; want FAT16", bs[0x36:0x3e])
	}
	fat1 := int64(binary.LittleEndian.Uint16(bs[14:])) * int64(binary.LittleEndian.Uint16(bs[11:]))
	if _, err := f.WriteAt([]byte{0xf0, 0xff}, fat1+2*100); err != nil {
		t.Fatal(err)
	}
}

// damageExFAT overwrites the boot region's checksum sector (sector 11), which fsck.exfat -n
// reports (exit 4) and -y restores from the backup region.
func damageExFAT(t *testing.T, disk string) {
	t.Helper()
	f, bs := bootSector(t, disk)
	if string(bs[3:11]) != "EXFAT   " {
		t.Fatalf("no exFAT boot sector: %q", bs[3:11])
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78}, 128), 11*512); err != nil {
		t.Fatal(err)
	}
}
