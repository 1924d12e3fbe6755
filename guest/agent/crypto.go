package agent

import (
	"errors"
	"strings"

	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

// prepareCrypto reads dev's LUKS header and loads the kernel crypto modules its ciphers need,
// so that only drives using serpent pay for serpent. A header naming what this guest lacks is
// refused before cryptsetup runs, with a message that does not blame the drive. A header the
// parser cannot read is left to cryptsetup, which reports it.
func (a *Agent) prepareCrypto(dev string) error {
	if a.deps.ReadHeader == nil || a.deps.Features == nil {
		return nil
	}
	h, err := a.deps.ReadHeader(dev)
	switch {
	case errors.Is(err, luksheader.ErrUnsupported):
		return control.Errorf(control.CodeUnsupportedCrypto, "%v", err)
	case err != nil:
		a.tl.Logf("debug", "cannot parse the LUKS header of %s (%v): cryptsetup decides", dev, err)
		return nil
	}
	if err := h.CheckSupported(); err != nil {
		return control.Errorf(control.CodeUnsupportedCrypto, "%v", err)
	}
	return a.loadCiphers(h.KernelAlgorithms(), h.CipherSpecs())
}

// loadCiphers loads the modules for the kernel algorithms algs (of the cipher specs).
func (a *Agent) loadCiphers(algs, specs []string) error {
	if a.deps.Features == nil {
		return nil
	}
	start := a.tl.Now()
	n, err := a.deps.Features(algs...)
	if errors.Is(err, initsys.ErrNoFeature) {
		return control.Errorf(control.CodeUnsupportedCrypto, "this drive uses %s (kernel %v), which luksmount's guest cannot open yet; nothing was changed",
			strings.Join(specs, ", "), err)
	}
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot load the kernel modules for %s: %v", strings.Join(specs, ", "), err)
	}
	if n > 0 {
		a.tl.Step("crypto-modules", start, "%s: %d module(s) for %s", strings.Join(specs, ", "), n, strings.Join(algs, ", "))
	}
	return nil
}

// formatCiphers loads what luksFormat with req's cipher needs (cryptsetup's default is aes-xts).
func (a *Agent) formatCiphers(req control.FormatRequest) error {
	spec := req.Cipher
	if spec == "" {
		spec = "aes-xts-plain64"
	}
	c, err := luksheader.ParseCipherSpec(spec)
	if err != nil {
		return control.Errorf(control.CodeInvalidArgument, "%v", err)
	}
	return a.loadCiphers(c.KernelAlgorithms(), []string{spec})
}
