package luksheader

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported means the header is intact but names something (a cipher, chain mode, IV, hash,
// KDF or LUKS version) that luksmount's guest cannot use. It is never a sign of damage: the
// user must not be sent to luksHeaderRestore for it.
var ErrUnsupported = errors.New("LUKS header uses an algorithm luksmount cannot open")

// UnsupportedError names what is not supported.
type UnsupportedError struct{ What string }

func (e *UnsupportedError) Error() string {
	return "this drive uses " + e.What + ", which luksmount's guest cannot open yet; nothing was changed"
}
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

func unsupported(format string, a ...any) error {
	return &UnsupportedError{What: fmt.Sprintf(format, a...)}
}

// CipherSpec is a dm-crypt cipher specification split into its parts: "aes-cbc-essiv:sha256"
// is {aes cbc essiv sha256}; the kernel-API form "capi:xts(aes)-plain64" is {aes xts plain64 ""}.
type CipherSpec struct {
	Cipher string // block cipher: aes, serpent, twofish...
	Mode   string // chaining mode: xts, cbc, lrw, ecb
	IV     string // IV generator: plain64, essiv, benbi... ("" for ecb)
	IVHash string // essiv's hash
}

// ParseCipherSpec splits spec (LUKS1 stores name and mode apart; pass them joined by "-").
func ParseCipherSpec(spec string) (CipherSpec, error) {
	var c CipherSpec
	if rest, ok := strings.CutPrefix(spec, "capi:"); ok {
		algo, iv, _ := strings.Cut(rest, "-")
		mode, inner, ok := strings.Cut(algo, "(")
		if !ok || !strings.HasSuffix(inner, ")") {
			return c, fmt.Errorf("cipher %q: cannot parse the kernel crypto API form", spec)
		}
		c.Mode, c.Cipher = mode, strings.TrimSuffix(inner, ")")
		if strings.ContainsAny(c.Cipher, "(),") {
			return c, fmt.Errorf("cipher %q: nested kernel algorithms are not supported", spec)
		}
		c.IV, c.IVHash, _ = strings.Cut(iv, ":")
		return c, nil
	}
	parts := strings.SplitN(spec, "-", 3)
	c.Cipher = parts[0]
	if len(parts) > 1 {
		c.Mode = parts[1]
	}
	if len(parts) > 2 {
		c.IV, c.IVHash, _ = strings.Cut(parts[2], ":")
	}
	if c.Cipher == "" || c.Mode == "" {
		return c, fmt.Errorf("cipher %q has no chaining mode", spec)
	}
	return c, nil
}

// KernelAlgorithms are the kernel crypto algorithms dm-crypt and cryptsetup need for the
// spec: the cipher, the mode and, for essiv, the IV generator and its hash. The xts and lrw
// templates are built on ecb(cipher) (crypto/xts.c, crypto/lrw.c), which AES has from aesni
// but every other cipher gets from the ecb template.
func (c CipherSpec) KernelAlgorithms() []string {
	out := []string{c.Cipher, c.Mode}
	if c.Mode == "xts" || c.Mode == "lrw" {
		out = append(out, "ecb")
	}
	if c.IV == "essiv" {
		out = append(out, "essiv", kernelHash(c.IVHash))
	}
	return out
}

// kernelHash maps cryptsetup's hash names to the kernel's.
func kernelHash(h string) string {
	switch h {
	case "ripemd160":
		return "rmd160"
	case "whirlpool":
		return "wp512"
	}
	return h
}

// What the guest can use. Ciphers, modes and the essiv hashes need kernel modules (the image's
// on-demand table must list each: initramfs tests check it); IV generators are in dm-crypt;
// hashes for PBKDF2 and the AF splitter are OpenSSL's (whirlpool through its legacy provider).
var (
	supportedCiphers = set("aes", "serpent", "twofish", "camellia", "cast5", "cast6", "blowfish", "cipher_null")
	supportedModes   = set("xts", "cbc", "ecb", "lrw")
	supportedIVs     = set("", "plain", "plain64", "plain64be", "essiv", "benbi", "null")
	supportedHashes  = set("sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160", "whirlpool",
		"sha3-224", "sha3-256", "sha3-384", "sha3-512", "blake2b-512", "blake2s-256", "sm3")
	supportedESSIV = set("sha1", "sha256", "sha512", "ripemd160", "whirlpool")
)

// SupportedKernelAlgorithms lists the kernel algorithms CheckSupported may accept, for the image
// builder's tests.
func SupportedKernelAlgorithms() []string {
	var out []string
	for _, m := range []map[string]bool{supportedCiphers, supportedModes} {
		for k := range m {
			if k != "cipher_null" {
				out = append(out, k)
			}
		}
	}
	for k := range supportedESSIV {
		out = append(out, kernelHash(k))
	}
	return append(out, "essiv")
}

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// CheckCipher returns an error matching ErrUnsupported when the guest cannot use spec.
func CheckCipher(spec string) error {
	c, err := ParseCipherSpec(spec)
	if err != nil {
		return unsupported("the cipher %s", spec)
	}
	switch {
	case !supportedCiphers[c.Cipher]:
		return unsupported("the cipher %s (%s)", spec, c.Cipher)
	case !supportedModes[c.Mode]:
		return unsupported("the cipher %s (mode %s)", spec, c.Mode)
	case !supportedIVs[c.IV]:
		return unsupported("the cipher %s (IV %s)", spec, c.IV)
	case c.IV == "essiv" && !supportedESSIV[c.IVHash]:
		return unsupported("the cipher %s (ESSIV hash %q)", spec, c.IVHash)
	case c.IV != "essiv" && c.IVHash != "":
		return unsupported("the cipher %s", spec)
	}
	return nil
}

// CheckHash returns an error matching ErrUnsupported when the guest cannot compute hash h.
func CheckHash(h string) error {
	if !supportedHashes[strings.ToLower(h)] {
		return unsupported("the hash %s", h)
	}
	return nil
}

// distinct collects strings once each, in the order first added, without "".
type distinct struct {
	seen map[string]bool
	out  []string
}

func (d *distinct) add(ss ...string) {
	for _, s := range ss {
		if s != "" && !d.seen[s] {
			if d.seen == nil {
				d.seen = map[string]bool{}
			}
			d.seen[s] = true
			d.out = append(d.out, s)
		}
	}
}

// CipherSpecs are every cipher the header uses: the data segment's and, on LUKS2, each active
// keyslot area's (usually the same), without repeats.
func (h *Header) CipherSpecs() []string {
	var d distinct
	d.add(h.Cipher)
	for _, k := range h.Keyslots {
		if k.Active {
			d.add(k.AreaCipher)
		}
	}
	return d.out
}

// Hashes are every hash the header uses (PBKDF2, AF splitter, digests), without repeats.
func (h *Header) Hashes() []string {
	var d distinct
	d.add(h.HashSpec)
	for _, k := range h.Keyslots {
		if k.Active {
			d.add(k.KDF.Hash, k.AFHash)
		}
	}
	d.add(h.DigestHashes...)
	return d.out
}

// CheckSupported returns an error matching ErrUnsupported, naming the first cipher or hash the
// guest cannot use, or nil.
func (h *Header) CheckSupported() error {
	for _, c := range h.CipherSpecs() {
		if err := CheckCipher(c); err != nil {
			return err
		}
	}
	for _, hs := range h.Hashes() {
		if err := CheckHash(hs); err != nil {
			return err
		}
	}
	return nil
}

// KernelAlgorithms are the kernel crypto algorithms opening h needs, without repeats, for the
// guest to load their modules first. Unparsable specs are skipped (CheckSupported reports them).
func (h *Header) KernelAlgorithms() []string {
	var d distinct
	for _, s := range h.CipherSpecs() {
		c, err := ParseCipherSpec(s)
		if err != nil || c.Cipher == "cipher_null" {
			continue
		}
		d.add(c.KernelAlgorithms()...)
	}
	return d.out
}
