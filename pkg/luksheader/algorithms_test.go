package luksheader

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCipherSpec(t *testing.T) {
	for spec, want := range map[string]CipherSpec{
		"aes-xts-plain64":                {"aes", "xts", "plain64", ""},
		"serpent-xts-plain64":            {"serpent", "xts", "plain64", ""},
		"aes-cbc-essiv:sha256":           {"aes", "cbc", "essiv", "sha256"},
		"aes-lrw-benbi":                  {"aes", "lrw", "benbi", ""},
		"twofish-ecb":                    {"twofish", "ecb", "", ""},
		"capi:xts(aes)-plain64":          {"aes", "xts", "plain64", ""},
		"capi:cbc(twofish)-essiv:sha512": {"twofish", "cbc", "essiv", "sha512"},
	} {
		got, err := ParseCipherSpec(spec)
		if err != nil || got != want {
			t.Errorf("ParseCipherSpec(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "aes", "capi:xts(aes", "capi:authenc(hmac(sha256),xts(aes))-random"} {
		if _, err := ParseCipherSpec(bad); err == nil {
			t.Errorf("ParseCipherSpec(%q) accepted", bad)
		}
	}
}

// luks1With is the LUKS1 fixture with its cipher name, mode and hash replaced (LUKS1 has no
// header checksum, so the result is a valid header).
func luks1With(t *testing.T, name, mode, hash string) []byte {
	b := bytes.Clone(fixture(t, "luks1-pbkdf2.bin"))
	put := func(off, n int, s string) {
		clear(b[off : off+n])
		copy(b[off:], s)
	}
	put(8, 32, name)
	put(40, 32, mode)
	put(72, 32, hash)
	return b
}

func TestLUKS1AlgorithmsSupported(t *testing.T) {
	for _, tc := range []struct {
		name, mode, hash string
		kernel           []string
	}{
		{"serpent", "xts-plain64", "sha256", []string{"serpent", "xts", "ecb"}},
		{"twofish", "xts-plain64", "sha512", []string{"twofish", "xts", "ecb"}},
		{"camellia", "xts-plain64", "sha1", []string{"camellia", "xts", "ecb"}},
		{"aes", "cbc-essiv:sha256", "ripemd160", []string{"aes", "cbc", "essiv", "sha256"}},
		{"aes", "lrw-benbi", "whirlpool", []string{"aes", "lrw", "ecb"}},
	} {
		id, err := Identify(bytes.NewReader(luks1With(t, tc.name, tc.mode, tc.hash)))
		if err != nil || id.Err != nil || id.Kind != KindLUKS1 {
			t.Fatalf("%s-%s/%s: Identify = %+v, %v", tc.name, tc.mode, tc.hash, id, err)
		}
		if got := id.LUKS.KernelAlgorithms(); !reflect.DeepEqual(got, tc.kernel) {
			t.Errorf("%s-%s: KernelAlgorithms = %v, want %v", tc.name, tc.mode, got, tc.kernel)
		}
		if got := id.LUKS.Hashes(); !reflect.DeepEqual(got, []string{tc.hash}) {
			t.Errorf("%s-%s: Hashes = %v, want [%s]", tc.name, tc.mode, got, tc.hash)
		}
	}
}

// An intact header naming an algorithm the guest lacks is "unsupported", never "corrupt": the
// corrupt message sends users to luksHeaderRestore.
func TestUnsupportedIsNotCorrupt(t *testing.T) {
	for _, tc := range []struct{ name, mode, hash, says string }{
		{"anubis", "xts-plain64", "sha256", "anubis-xts-plain64"},
		{"aes", "ctr-plain64", "sha256", "mode ctr"},
		{"aes", "cbc-tcw", "sha256", "IV tcw"},
		{"aes", "cbc-essiv:md5", "sha256", `ESSIV hash "md5"`},
		{"aes", "xts-plain64", "gost", "the hash gost"},
	} {
		id, err := Identify(bytes.NewReader(luks1With(t, tc.name, tc.mode, tc.hash)))
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(id.Err, ErrUnsupported) || errors.Is(id.Err, ErrCorrupt) || id.LUKS == nil {
			t.Fatalf("%s-%s/%s: Identify.Err = %v; want ErrUnsupported (not ErrCorrupt) with the header", tc.name, tc.mode, tc.hash, id.Err)
		}
		msg := id.Err.Error()
		if !strings.Contains(msg, tc.says) || !strings.Contains(msg, "cannot open yet; nothing was changed") ||
			strings.Contains(msg, "corrupt") || strings.Contains(msg, "restore") {
			t.Errorf("message %q: want it to name %q and not blame the drive", msg, tc.says)
		}
	}
	b := bytes.Clone(fixture(t, "luks1-pbkdf2.bin"))
	b[7] = 3 // version 3
	if _, err := Parse(bytes.NewReader(b)); !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) {
		t.Errorf("LUKS version 3: err = %v, want ErrUnsupported", err)
	}
	js := `{"keyslots":{"0":{"type":"luks2","kdf":{"type":"scrypt"}}},"segments":{}}`
	if _, err := Parse(bytes.NewReader(withJSON(t, []byte(js)))); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "scrypt") {
		t.Errorf("unknown KDF: err = %v, want ErrUnsupported naming scrypt", err)
	}
}

func TestLUKS2AreaAndDigestAlgorithms(t *testing.T) {
	js := `{"keyslots":{"0":{"type":"luks2","key_size":64,"kdf":{"type":"pbkdf2","hash":"sha512","iterations":1000},
		"af":{"type":"luks1","hash":"ripemd160"},"area":{"type":"raw","encryption":"camellia-xts-plain64"}}},
		"digests":{"0":{"type":"pbkdf2","hash":"whirlpool"}},
		"segments":{"0":{"type":"crypt","offset":"16777216","encryption":"twofish-xts-plain64","sector_size":512}}}`
	h, err := Parse(bytes.NewReader(withJSON(t, []byte(js))))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.CipherSpecs(), []string{"twofish-xts-plain64", "camellia-xts-plain64"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CipherSpecs = %v, want %v", got, want)
	}
	if got, want := h.KernelAlgorithms(), []string{"twofish", "xts", "ecb", "camellia"}; !reflect.DeepEqual(got, want) {
		t.Errorf("KernelAlgorithms = %v, want %v", got, want)
	}
	if got, want := h.Hashes(), []string{"sha512", "ripemd160", "whirlpool"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hashes = %v, want %v", got, want)
	}
	if err := h.CheckSupported(); err != nil {
		t.Errorf("CheckSupported = %v", err)
	}
	bad := strings.Replace(js, `"hash":"whirlpool"`, `"hash":"streebog512"`, 1)
	h, err = Parse(bytes.NewReader(withJSON(t, []byte(bad))))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.CheckSupported(); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "streebog512") {
		t.Errorf("digest hash streebog512: CheckSupported = %v", err)
	}
}
