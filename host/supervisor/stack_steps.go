package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
	"github.com/luksmount/luksmount/pkg/stackprobe"
)

// Layered targets: several devices ("a.img+b.img", an LVM group or RAID array across drives)
// and what sits below the filesystem (partition tables, LVM, RAID). The host reads what it can
// (partition tables, the LUKS headers inside them) to size the VM and know whether to ask for a
// passphrase; what only the guest can assemble (LVM, RAID) it asks the guest about after boot.

// MemberSeparator joins the devices of a multi-device target.
const MemberSeparator = "+"

// hiddenKDFMiB is the key derivation memory assumed for a LUKS volume the host cannot see (inside
// LVM or RAID): cryptsetup's largest default argon2 cost.
const hiddenKDFMiB = 1024

// stackInfo is what the host knows of a layered target.
type stackInfo struct {
	layouts []*stackprobe.Layout   // per device, in order
	luks    []*luksheader.Identity // LUKS headers read inside partitions
	hidden  bool                   // LVM or RAID: a LUKS volume may be inside
	members []*blockdev.Device     // the devices after the first
	probed  *control.ProbeReply    // the guest's view once it assembled the stack
}

// SplitTarget splits a multi-device target into its devices.
func SplitTarget(t string) []string {
	var out []string
	for _, p := range strings.Split(t, MemberSeparator) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// firstMember is the device the session is named after and whose header is read first.
func firstMember(t string) string {
	if m := SplitTarget(t); len(m) > 0 {
		return m[0]
	}
	return t
}

// openMembers opens the devices after the first, refusing any the host has mounted.
func (s *sup) openMembers() error {
	members := SplitTarget(s.opts.Target)
	if len(members) < 2 {
		return nil
	}
	if s.stack == nil {
		s.stack = &stackInfo{}
	}
	for _, m := range members[1:] {
		d, err := s.deps.Open(m, s.opts.ReadOnly())
		if err != nil {
			return err
		}
		s.stack.members = append(s.stack.members, d)
		if s.deps.Host != nil {
			if err := s.deps.Host.CheckNotMounted(d); err != nil {
				return err
			}
		}
		if d.Path == s.dev.Path {
			return control.Errorf(control.CodeInvalidArgument, "%s is named twice in %s", d.Path, s.opts.Target)
		}
	}
	return nil
}

// targetPath is the session's target: the device, or every member joined with "+".
func (s *sup) targetPath() string {
	p := s.dev.Path
	if s.stack != nil {
		for _, m := range s.stack.members {
			p += MemberSeparator + m.Path
		}
	}
	return p
}

func (s *sup) closeMembers() {
	if s.stack == nil {
		return
	}
	for _, m := range s.stack.members {
		m.Close()
	}
}

// identifyStack looks below the filesystem level when the first device holds neither LUKS nor a
// filesystem the host recognises, and at every member. It returns an error for what luksmount
// cannot open at all; a layout it does not recognise leaves s.stack nil.
func (s *sup) identifyStack() error {
	devs := []*blockdev.Device{s.dev}
	if s.stack != nil {
		devs = append(devs, s.stack.members...)
	}
	info := s.stack
	if info == nil {
		info = &stackInfo{}
	}
	found := len(devs) > 1
	for i, d := range devs {
		l, err := stackprobe.Probe(d.ReaderAt(), d.Size)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", d.Path, err)
		}
		info.layouts = append(info.layouts, l)
		switch l.Kind {
		case stackprobe.BitLocker:
			if s.opts.Crypt.Type == "tcrypt" {
				return control.Errorf(control.CodeInvalidArgument, "%s is a BitLocker volume, not VeraCrypt: drop --veracrypt/--truecrypt", d.Path)
			}
			s.opts.Crypt.Type, found = "bitlk", true
		case stackprobe.LVM2, stackprobe.MD:
			info.hidden, found = true, true
		case stackprobe.GPT, stackprobe.MBR:
			found = true
			for _, p := range l.Partitions {
				id, err := luksheader.Identify(io.NewSectionReader(d.ReaderAt(), p.Start, p.Size))
				if err == nil && id.Kind.IsLUKS() && id.LUKS != nil {
					info.luks = append(info.luks, id)
				}
			}
		default:
			if i > 0 { // a member's own header: LUKS members of one stack
				id, err := luksheader.Identify(d.ReaderAt())
				if err == nil && id.Kind.IsLUKS() && id.LUKS != nil {
					info.luks = append(info.luks, id)
				}
			}
		}
	}
	if found {
		s.stack = info
	}
	return nil
}

// encrypted says whether the host knows a passphrase will be needed before booting.
func (s *sup) encrypted() bool {
	return s.id.Kind.IsLUKS() || (s.stack != nil && len(s.stack.luks) > 0) || s.opts.Crypt.Type != ""
}

// stackLabel describes a layered target for the log.
func (s *sup) stackLabel() string {
	if s.stack == nil {
		return s.id.Kind.String()
	}
	var kinds []string
	for _, l := range s.stack.layouts {
		k := string(l.Kind)
		if k == "" {
			k = "other"
		}
		kinds = append(kinds, k)
	}
	return strings.Join(kinds, "+")
}

// stackRequest is the volume choice and RAID policy every unlock and mount carries.
func (s *sup) stackRequest() control.Stack {
	return control.Stack{Volume: s.opts.Volume, AllowDegraded: s.opts.AllowDegraded}
}

// needsUnlock says whether to unlock: the host saw LUKS, or the guest found it inside LVM or RAID.
func (s *sup) needsUnlock(ctx context.Context) (bool, error) {
	if s.encrypted() {
		return true, nil
	}
	if s.stack == nil || !s.stack.hidden {
		return false, nil
	}
	t := s.log.Start("assemble")
	pctx, cancel := context.WithTimeout(ctx, stepTimeout)
	r, err := s.vm.Control().ProbeStack(pctx, control.ProbeRequest{Assemble: true, Stack: s.stackRequest()})
	cancel()
	if err != nil {
		return false, t.Done(fmt.Errorf("cannot assemble %s: %w", s.targetPath(), err), "")
	}
	s.stack.probed = r
	var luks []string
	for _, v := range r.Volumes {
		if v.Type == "crypto_LUKS" {
			luks = append(luks, v.Name)
		}
	}
	t.Done(nil, "%d volume(s), %d LUKS", len(r.Volumes), len(luks))
	return len(luks) > 0, nil
}

// askFirst asks for the passphrase when the need was only found after booting.
func (s *sup) askFirst(ctx context.Context) ([]byte, error) {
	first, err := s.ui.Passphrase(ctx, fmt.Sprintf("Passphrase for %s: ", s.targetPath()), 1, MaxAttempts)
	if err != nil {
		return nil, s.passphraseInputError(err, 0)
	}
	return first, nil
}

// flushMembers flushes every member's cache (flushDrive does the first device).
func (s *sup) flushMembers() error {
	if s.stack == nil {
		return nil
	}
	var errs []error
	for _, m := range s.stack.members {
		if m.File == nil || m.ReadOnly {
			continue
		}
		flush := s.deps.Flush
		if flush == nil {
			flush = (*blockdev.Device).Flush
		}
		if err := flush(m); err != nil {
			errs = append(errs, fmt.Errorf("%w: cannot flush the write cache of %s (%w)", ErrUncleanShutdown, m.Path, err))
		}
	}
	if len(errs) > 0 {
		s.log.Note(timelog.Host, "WARN: %v", errors.Join(errs...))
	}
	return errors.Join(errs...)
}

func (s *sup) members() []*blockdev.Device {
	if s.stack == nil {
		return nil
	}
	return s.stack.members
}
