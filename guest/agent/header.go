package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/pkg/control"
)

// Detached LUKS headers (`luksmount --header FILE TARGET`): the host adds FILE as the last disk,
// read-only, with the serial control.HeaderSerial. The agent finds it by that serial (not by
// name), hides it from every disk listing so nothing else probes, assembles or mounts it, and
// opens the data disk with `cryptsetup open --header`.

// DiskSerial reads a virtio disk's serial from sysfs ("" for a partition or no serial).
func DiskSerial(sysBlock, dev string) string {
	b, err := os.ReadFile(filepath.Join(sysBlock, filepath.Base(dev), "serial"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// headerDisk is the guest device holding the detached header ("" = none).
func (a *Agent) headerDisk(ds []control.Disk) string {
	if a.deps.Serial == nil {
		return ""
	}
	for _, d := range ds {
		if a.deps.Serial(d.Device) == control.HeaderSerial {
			return d.Device
		}
	}
	return ""
}

// withoutHeader drops the header disk and any partition the kernel may have read into it.
func (a *Agent) withoutHeader(ds []control.Disk) []control.Disk {
	h := a.headerDisk(ds)
	if h == "" {
		return ds
	}
	out := make([]control.Disk, 0, len(ds))
	for _, d := range ds {
		if d.Device == h || (strings.HasPrefix(d.Device, h) && isPartitionOf(d.Device)) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// unlockDetached opens the data disk (req.Device, else the first whole disk) with the header on
// the header disk. The header disk is read-only in QEMU and in the guest: opening never writes it.
func (a *Agent) unlockDetached(ctx context.Context, req control.UnlockRequest, secret []byte) (any, error) {
	all, err := a.deps.Disks()
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "%v", err)
	}
	hdr := a.headerDisk(all)
	if hdr == "" {
		return nil, control.Errorf(control.CodeNotFound, "the VM has no detached-header disk (serial %s): luksmount and its guest images come from different builds", control.HeaderSerial)
	}
	dev := ""
	for _, d := range a.withoutHeader(all) {
		if (req.Device == "" && !isPartitionOf(d.Device)) || d.Device == req.Device {
			dev = d.Device
			break
		}
	}
	if dev == "" {
		return nil, control.Errorf(control.CodeNotFound, "no data disk %s in the VM for the detached header", cmp.Or(req.Device, "at all"))
	}
	if err := a.prepareCrypto(hdr); err != nil {
		a.tl.Logf("warn", "unlock %s refused: %v", dev, err)
		return nil, err
	}
	start := a.tl.Now()
	p := a.startProgress("unlock", fmt.Sprintf("deriving the key for %s from its detached header (takes a few seconds)", dev))
	o := cryptsetup.OpenOptions{ReadOnly: req.ReadOnly, AllowDiscards: req.AllowDiscards, Header: hdr}
	err = a.crypt.OpenWith(ctx, dev, o, secret, true)
	p.stop()
	if err != nil {
		a.tl.Logf("warn", "unlock %s (header %s) failed: %v", dev, hdr, err)
		return nil, headerError(err)
	}
	a.mu.Lock()
	a.state, a.device, a.mapper, a.readOnly, a.detached = control.StateUnlocked, dev, cryptsetup.MapperPath, req.ReadOnly, hdr
	a.mu.Unlock()
	a.tl.Step("unlock", start, "%s opened as %s with the detached header on %s (read-only)%s%s", dev, cryptsetup.MapperPath, hdr, roNote(req.ReadOnly), discardNote(req.AllowDiscards))
	if err := a.afterUnlock(ctx); err != nil {
		return nil, err
	}
	return control.UnlockReply{Mapper: cryptsetup.MapperPath}, nil
}

// headerError rewords what would send the user to luksHeaderRestore: here the header is a file
// the user gave, and the drive itself has none to restore.
func headerError(err error) error {
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeCorruptHeader {
		return err
	}
	out := control.Errorf(control.CodeCorruptHeader, "cryptsetup cannot use the detached header (%s); check the --header file with `cryptsetup luksDump FILE`; nothing was changed", lastLineOf(ce.Detail))
	out.Detail = ce.Detail
	return out
}

// emptyMapping is mount's error when the opened mapping holds nothing blkid recognises.
func (a *Agent) emptyMapping() error {
	a.mu.Lock()
	detached := a.detached
	a.mu.Unlock()
	if detached != "" {
		// A header records no identity of its data device: any device opens with the right
		// passphrase and decrypts to noise (cryptsetup-open(8), --header: "There is no check
		// whether the ciphertext device specified actually belongs to the header given").
		return control.Errorf(control.CodeUnsupportedFS, "the passphrase opened the detached header, but the drive decrypts to no filesystem: the --header file most likely belongs to another drive (nothing can check that before unlocking), or the volume was never formatted; nothing was written")
	}
	return control.Errorf(control.CodeUnsupportedFS, "the LUKS container opened, but holds no filesystem; it may be new or damaged (check it on Linux with `e2fsck -n`)")
}

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSuffix(strings.TrimSpace(lines[len(lines)-1]), ".")
}

// detachedResize refuses to grow a mapping opened with a detached header: `cryptsetup resize`
// would need the header again (src/cryptsetup.c action_resize: crypt_init_by_name_and_header),
// and without it reads the data device, finds no header and would blame the drive.
func (a *Agent) detachedResize() error {
	a.mu.Lock()
	detached := a.detached
	a.mu.Unlock()
	if detached == "" {
		return nil
	}
	return control.Errorf(control.CodeInvalidArgument, "cannot resize a drive opened with --header yet: grow it on Linux with `cryptsetup resize --header FILE`; nothing was changed")
}
