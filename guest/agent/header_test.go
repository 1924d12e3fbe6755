package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
)

// headerRunner is fakeSys with the cryptsetup argv recorded and the mapping's content chosen.
type headerRunner struct {
	*fakeSys
	mu    sync.Mutex
	opens [][]string
	empty bool // the mapping decrypts to nothing blkid knows
}

func (h *headerRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	if c.Name == "cryptsetup" && c.Args[0] == "open" {
		h.mu.Lock()
		h.opens = append(h.opens, slices.Clone(c.Args))
		h.mu.Unlock()
	}
	if c.Name == "blkid" && h.empty && c.Args[len(c.Args)-1] == "/dev/mapper/luksmount" {
		return command.Result{ExitCode: 2}, nil
	}
	return h.fakeSys.Run(ctx, c)
}

// newHeaderAgent: vda is the data disk (no signature), vdb a plain ext4 disk, vdc the header.
func newHeaderAgent(t *testing.T, withHeader bool) (*Agent, *headerRunner) {
	a, f := newTestAgent(t)
	h := &headerRunner{fakeSys: f}
	a.deps.Run = h
	a.crypt.Run = h
	a.deps.Disks = func() ([]control.Disk, error) {
		return []control.Disk{{Device: "/dev/vda", Size: 64 << 20}, {Device: "/dev/vdb", Size: 1 << 20}, {Device: "/dev/vdc", Size: 16 << 20, ReadOnly: true}}, nil
	}
	a.deps.Serial = func(dev string) string {
		if withHeader && dev == "/dev/vdc" {
			return control.HeaderSerial
		}
		return ""
	}
	return a, h
}

func TestUnlockWithDetachedHeader(t *testing.T) {
	a, h := newHeaderAgent(t, true)
	c := client(t, a)
	ctx := context.Background()
	ds, err := a.disks()
	if err != nil || len(ds) != 2 || slices.ContainsFunc(ds, func(d control.Disk) bool { return d.Device == "/dev/vdc" }) {
		t.Fatalf("disks() = %v, %v: the header disk must be hidden", ds, err)
	}
	_, err = c.Unlock(ctx, control.UnlockRequest{Header: true}, []byte("wrong"))
	wantCode(t, err, control.CodeWrongPassphrase, "wrong passphrase")
	if _, err := c.Unlock(ctx, control.UnlockRequest{Header: true, ReadOnly: true}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	want := []string{"open", "--type", "luks", "/dev/vda", "luksmount", "--key-file=-", "--disable-keyring", "--readonly", "--header", "/dev/vdc"}
	if len(h.opens) != 2 || !slices.Equal(h.opens[1], want) {
		t.Fatalf("cryptsetup open argv = %q, want %q", h.opens, want)
	}
	for _, args := range h.opens {
		if strings.Contains(strings.Join(args, " "), "right") || strings.Contains(strings.Join(args, " "), "wrong") {
			t.Fatalf("the passphrase reached argv: %q", args)
		}
	}
	mr, err := c.Mount(ctx, control.MountRequest{})
	if err != nil || mr.FSType != "ext4" {
		t.Fatalf("mount = %+v, %v", mr, err)
	}
	if err := a.detachedResize(); err == nil || !strings.Contains(err.Error(), "--header") {
		t.Fatalf("resize with a detached header: %v", err)
	}
	rep, err := a.Shutdown(ctx, control.ShutdownRequest{NoPowerOff: true})
	if err != nil || !rep.Closed {
		t.Fatalf("shutdown = %+v, %v", rep, err)
	}
	if err := a.detachedResize(); err != nil {
		t.Fatalf("the header is forgotten once the mapping is closed: %v", err)
	}
}

func TestDetachedHeaderEmptyMappingSaysWhy(t *testing.T) {
	a, h := newHeaderAgent(t, true)
	h.empty = true
	c := client(t, a)
	ctx := context.Background()
	if _, err := c.Unlock(ctx, control.UnlockRequest{Header: true}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Mount(ctx, control.MountRequest{})
	wantCode(t, err, control.CodeUnsupportedFS, "empty mapping")
	if !strings.Contains(err.Error(), "--header file most likely belongs to another drive") {
		t.Fatalf("the message does not point at the header: %v", err)
	}
}

func TestDetachedHeaderWithoutHeaderDisk(t *testing.T) {
	a, _ := newHeaderAgent(t, false)
	c := client(t, a)
	_, err := c.Unlock(context.Background(), control.UnlockRequest{Header: true}, []byte("right"))
	wantCode(t, err, control.CodeNotFound, "no header disk")
}

func TestHeaderErrorNeverSendsToHeaderRestore(t *testing.T) {
	in := control.Errorf(control.CodeCorruptHeader, "cannot unlock /dev/vda: its LUKS header is damaged (x); restore a header backup with `cryptsetup luksHeaderRestore`")
	in.Detail = "Device /dev/vdc is not a valid LUKS device."
	got := headerError(in).Error()
	if strings.Contains(got, "luksHeaderRestore") || !strings.Contains(got, "--header file") {
		t.Fatalf("headerError = %s", got)
	}
}

func TestDiskSerial(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "vdc"), 0o755)
	os.WriteFile(filepath.Join(dir, "vdc", "serial"), []byte(control.HeaderSerial+"\n"), 0o644)
	if got := DiskSerial(dir, "/dev/vdc"); got != control.HeaderSerial {
		t.Fatalf("DiskSerial = %q", got)
	}
	if got := DiskSerial(dir, "/dev/vda"); got != "" {
		t.Fatalf("DiskSerial of a disk without one = %q", got)
	}
}
