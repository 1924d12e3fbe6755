package cryptsetup

import (
	"context"

	"github.com/luksmount/luksmount/pkg/control"
)

// OpenOptions are the choices `cryptsetup open` takes from the user.
type OpenOptions struct {
	ReadOnly bool
	// AllowDiscards passes TRIM through dm-crypt: the drive then shows which blocks are free.
	AllowDiscards bool
}

// OpenArgsFor builds `cryptsetup open`. The volume key stays in the dm table rather than the
// kernel keyring (--disable-keyring) so `cryptsetup resize` can grow the mapping without asking
// for the passphrase again; inside the single-purpose guest both are kernel memory only root sees.
func OpenArgsFor(dev string, o OpenOptions) []string {
	return OpenArgsNamed(dev, MapperName, o)
}

// OpenArgsNamed is OpenArgsFor with the mapping called name (further LUKS members of a stack).
func OpenArgsNamed(dev, name string, o OpenOptions) []string {
	args := []string{"open", "--type", "luks", dev, name, "--key-file=-", "--disable-keyring"}
	if o.ReadOnly {
		args = append(args, "--readonly")
	}
	if o.AllowDiscards {
		args = append(args, "--allow-discards")
	}
	return args
}

// ResizeArgs builds `cryptsetup resize`: the mapping grows to fill its (grown) device.
func ResizeArgs() []string { return []string{"resize", MapperName} }

// Resize grows the open mapping to its device's size.
func (t *Tool) Resize(ctx context.Context) error {
	r, err := t.run(ctx, ResizeArgs(), nil)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("grow the mapping "+MapperName, r, true, Memory{})
}

// OpenNamed unlocks dev as /dev/mapper/name (see Open).
func (t *Tool) OpenNamed(ctx context.Context, dev, name string, o OpenOptions, secret []byte, hasMagic bool) error {
	if len(secret) == 0 {
		return control.Errorf(control.CodeInvalidArgument, "empty passphrase: nothing to unlock %s with", dev)
	}
	r, err := t.run(ctx, OpenArgsNamed(dev, name, o), secret)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("unlock "+dev, r, hasMagic, t.memory(ctx, r, dev))
}

// CloseNamed closes /dev/mapper/name.
func (t *Tool) CloseNamed(ctx context.Context, name string) error {
	r, err := t.run(ctx, []string{"close", name}, nil)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("close "+name, r, true, Memory{})
}
