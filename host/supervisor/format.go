package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/luksmount/luksmount/host/passphrase"
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
	FS                   string // ext4 (""), btrfs, xfs, exfat, vfat, ntfs
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
	created, err := prepareImage(o)
	if err != nil {
		return nil, err
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

	s := &sup{deps: deps, dev: dev, ui: progressUI(progress), opts: Options{Accel: o.Accel}}
	logPath := deps.LogPath(session.ID(dev.Path))
	uid := -1
	if o.Sudo {
		uid = o.UID
	}
	s.openLog(logPath, uid, o.GID)
	defer s.log.Close()
	s.log.Begin("luksmount %s: format %s as %s, label %q", version.String(), dev.Path, o.Type, o.Label)
	defer func() {
		if err != nil {
			s.log.Note(timelog.Host, "format failed: %v", err)
		}
	}()

	size := sizeForFormat(formatKDFMiB(o), o.MemoryMiB, o.CPUs)
	tmp, err := os.MkdirTemp("", "luksmount-format-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// Every way out powers the VM off; the closure sees the final err (forcing after a failure).
	defer func() { s.powerOff(context.Background(), err != nil) }()
	if err := s.bootAndHello(ctx, size, tmp, logPath); err != nil {
		return nil, err
	}
	if rep, err = s.formatInVM(ctx, o, secret); err != nil {
		return nil, err
	}
	// Power off cleanly (the guest syncs before it replies, the drive is flushed after).
	if err := s.powerOff(ctx, false); err != nil {
		return nil, err
	}
	return rep, nil
}

// formatKDFMiB is the key derivation memory the new keyslot will need (0: no encryption).
func formatKDFMiB(o FormatOptions) int64 {
	switch {
	case o.Type == "none":
		return 0
	case o.PBKDFMemoryKiB > 0:
		return int64(o.PBKDFMemoryKiB+1023) / 1024
	}
	return defaultKDFMiB
}

// formatInVM has the agent create the container and filesystem.
func (s *sup) formatInVM(ctx context.Context, o FormatOptions, secret []byte) (*control.FormatReply, error) {
	s.progress("formatting...")
	t := s.log.Start("format")
	fctx, cancel := context.WithTimeout(ctx, unlockTimeout)
	rep, err := s.vm.Control().Format(fctx, control.FormatRequest{
		Type: o.Type, Label: o.Label, FS: o.FS, PBKDFMemoryKiB: o.PBKDFMemoryKiB, IterTimeMS: o.IterTimeMS,
		PBKDFForceIterations: o.PBKDFForceIterations, Cipher: o.Cipher, KeySizeBits: o.KeySizeBits, Hash: o.Hash,
	}, secret)
	cancel()
	if err != nil {
		return nil, t.Done(fmt.Errorf("cannot format %s: %w", s.dev.Path, err), "")
	}
	t.Done(nil, "luks uuid %s, fs uuid %s", rep.LUKSUUID, rep.FSUUID)
	s.progress("formatted in %s", timelog.FormatDuration(t.Elapsed()))
	return rep, nil
}

// prepareImage creates (or, with --force, resizes) the image file --size asks for; created says
// it is new, so a failed format removes it again.
func prepareImage(o FormatOptions) (created bool, err error) {
	if o.Size <= 0 {
		return false, nil
	}
	f, err := os.OpenFile(o.Target, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Truncate(o.Size); err != nil {
			f.Close()
			os.Remove(o.Target)
			return false, fmt.Errorf("cannot size %s: %w", o.Target, err)
		}
		f.Close()
		if o.Sudo {
			os.Chown(o.Target, o.UID, o.GID)
		}
		return true, nil
	case errors.Is(err, os.ErrExist):
		st, serr := os.Stat(o.Target)
		if serr != nil || !st.Mode().IsRegular() {
			return false, fmt.Errorf("--size only applies to image files, and %s is not one: %w", o.Target, ErrHasData)
		}
		if st.Size() != o.Size && !o.Force {
			return false, fmt.Errorf("%s already exists with another size: %w; remove it or add --force", o.Target, ErrHasData)
		}
		if st.Size() != o.Size {
			if err := os.Truncate(o.Target, o.Size); err != nil {
				return false, fmt.Errorf("cannot resize %s: %w", o.Target, err)
			}
		}
		return false, nil
	default:
		return false, fmt.Errorf("cannot create %s: %w", o.Target, err)
	}
}

// progressUI is a UI that only shows progress (Format asks for nothing once it runs).
type progressUI func(string)

func (p progressUI) Progress(line string) { p(line) }

func (p progressUI) Passphrase(context.Context, string, int, int) ([]byte, error) {
	return nil, passphrase.ErrNoInput
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
