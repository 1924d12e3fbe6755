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
	args := []string{"open", "--type", "luks", dev, MapperName, "--key-file=-", "--disable-keyring"}
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
