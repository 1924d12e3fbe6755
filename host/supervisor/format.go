package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/version"
)

// ErrHasData means format found something on the target and was not forced.
var ErrHasData = errors.New("the target holds data")

// FormatOptions describe a format.
type FormatOptions struct {
	Target               string
	Size                 int64 // create an image file of this many bytes (0 = target must exist)
	Label                string
	Type                 string // luks2, luks1, none
	PBKDFMemoryKiB       int
	IterTimeMS           int
	PBKDFForceIterations int
	Cipher               string // LUKS cipher spec ("" = cryptsetup's aes-xts-plain64)
	KeySizeBits          int
	Hash                 string
	Force                bool
	MemoryMiB            int
	CPUs                 int
	Accel                string
	UID, GID             int
	Sudo                 bool
}

// defaultKDFMiB is what cryptsetup's argon2 uses at most when --pbkdf-memory is not given.
const defaultKDFMiB = 1024

// Format creates a new LUKS container (unless Type is none) with an ext4 filesystem on the target,
// in the VM. secret is the new passphrase (nil for none); the caller wipes it.
func Format(ctx context.Context, o FormatOptions, deps Deps, secret []byte, progress func(string)) (rep *control.FormatReply, err error) {
	created := false
	if o.Size > 0 {
		f, err := os.OpenFile(o.Target, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			created = true
			if err := f.Truncate(o.Size); err != nil {
				f.Close()
				os.Remove(o.Target)
				return nil, fmt.Errorf("cannot size %s: %w", o.Target, err)
			}
			f.Close()
			if o.Sudo {
				os.Chown(o.Target, o.UID, o.GID)
			}
		case errors.Is(err, os.ErrExist):
			st, serr := os.Stat(o.Target)
			if serr != nil || !st.Mode().IsRegular() {
				return nil, fmt.Errorf("--size only applies to image files, and %s is not one: %w", o.Target, ErrHasData)
			}
			if st.Size() != o.Size && !o.Force {
				return nil, fmt.Errorf("%s already exists with another size: %w; remove it or add --force", o.Target, ErrHasData)
			}
			if st.Size() != o.Size {
				if err := os.Truncate(o.Target, o.Size); err != nil {
					return nil, fmt.Errorf("cannot resize %s: %w", o.Target, err)
				}
			}
		default:
			return nil, fmt.Errorf("cannot create %s: %w", o.Target, err)
		}
	}
	defer func() {
		if err != nil && created {
			os.Remove(o.Target)
		}
	}()
	dev, err := deps.Open(o.Target, false)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	if !o.Force {
		if err := checkEmpty(dev.ReaderAt(), dev.Size, dev.Path); err != nil {
			return nil, err
		}
	}

	id := session.ID(dev.Path)
	log := timelog.New(discard{})
	if deps.LogPath != nil {
		uid := -1
		if o.Sudo {
			uid = o.UID
		}
		if l, err := timelog.Open(deps.LogPath(id), uid, o.GID); err == nil {
			log = l
		}
	}
	defer log.Close()
	log.Begin("luksmount %s: format %s as %s, label %q", version.String(), dev.Path, o.Type, o.Label)
	defer func() {
		if err != nil {
			log.Note(timelog.Host, "format failed: %v", err)
		}
	}()

	kdfMiB := int64(0)
	if o.Type != "none" {
		kdfMiB = defaultKDFMiB
		if o.PBKDFMemoryKiB > 0 {
			kdfMiB = int64(o.PBKDFMemoryKiB+1023) / 1024
		}
	}
	mem := qemu.MemoryForFormat(kdfMiB)
	if o.MemoryMiB > 0 {
		mem = o.MemoryMiB
	}
	cpus := o.CPUs
	if cpus <= 0 {
		cpus = 2
	}
	progress(fmt.Sprintf("booting VM (%d MiB)...", mem))
	t := log.Start("boot VM")
	tmp, err := os.MkdirTemp("", "luksmount-format-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	m, err := deps.Boot(bctx, BootSpec{Device: dev, MemoryMiB: mem, CPUs: cpus, Accel: o.Accel,
		SessionDir: tmp, Logf: func(format string, args ...any) { log.Note(timelog.Host, format, args...) },
		ConsoleLog: strings.TrimSuffix(deps.LogPath(id), ".log") + ".console.log", OnEvent: func(ev control.Event) {
			log.Guest(ev)
			if ev.Kind == control.EventProgress && ev.Message != "" {
				progress("  " + ev.Message)
			}
		}})
	cancel()
	if err != nil {
		return nil, t.Done(fmt.Errorf("%w: %w", ErrBoot, err), "")
	}
	s := &sup{log: log, vm: m}
	defer s.powerOff(context.Background(), err != nil)
	hctx, cancel := context.WithTimeout(ctx, stepTimeout)
	_, err = m.Control().Hello(hctx, version.String())
	cancel()
	if err != nil {
		return nil, t.Done(fmt.Errorf("%w: the guest agent did not answer: %w", ErrBoot, err), "")
	}
	t.Done(nil, "qemu pid %d", m.Pid())
	progress(fmt.Sprintf("booted in %s; formatting...", timelog.FormatDuration(t.Elapsed())))
	t = log.Start("format")
	fctx, cancel := context.WithTimeout(ctx, unlockTimeout)
	rep, err = m.Control().Format(fctx, control.FormatRequest{
		Type: o.Type, Label: o.Label, PBKDFMemoryKiB: o.PBKDFMemoryKiB, IterTimeMS: o.IterTimeMS,
		PBKDFForceIterations: o.PBKDFForceIterations, Cipher: o.Cipher, KeySizeBits: o.KeySizeBits, Hash: o.Hash,
	}, secret)
	cancel()
	if err != nil {
		return nil, t.Done(fmt.Errorf("cannot format %s: %w", dev.Path, err), "")
	}
	t.Done(nil, "luks uuid %s, fs uuid %s", rep.LUKSUUID, rep.FSUUID)
	progress(fmt.Sprintf("formatted in %s", timelog.FormatDuration(t.Elapsed())))
	// Power off cleanly: the guest syncs before it replies.
	if perr := s.powerOff(ctx, false); perr != nil {
		return nil, perr
	}
	return rep, nil
}

// checkEmpty refuses a target with a LUKS header, a filesystem signature, or any non-zero byte
// in its first MiB.
func checkEmpty(r io.ReaderAt, size int64, path string) error {
	id, err := luksheader.Identify(r)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	if id.Kind != luksheader.KindUnknown {
		return fmt.Errorf("%s holds a %s signature: %w; formatting would destroy it (add --force if you are sure)", path, id.Kind, ErrHasData)
	}
	n := int64(1 << 20)
	if size < n {
		n = size
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	for i, b := range buf {
		if b != 0 {
			return fmt.Errorf("%s is not empty (non-zero byte at offset %d): %w; formatting would destroy it (add --force if you are sure)", path, i, ErrHasData)
		}
	}
	return nil
}
