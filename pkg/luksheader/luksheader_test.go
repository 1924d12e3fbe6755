package luksheader

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file      string
		version   int
		uuid      string
		label     string
		subsystem string
		cipher    string
		sector    int
		payload   int64
		slots     []KDF // active keyslots in order
		maxMem    int
	}{
		{
			file: "luks1-pbkdf2.bin", version: 1, uuid: "11111111-1111-4111-8111-111111111111",
			cipher: "aes-xts-plain64", sector: 512, payload: 4096 * 512,
			slots: []KDF{{Type: KDFPBKDF2, Hash: "sha256", Iterations: 1000}},
		},
		{
			file: "luks2-argon2id.bin", version: 2, uuid: "22222222-2222-4222-8222-222222222222",
			cipher: "aes-xts-plain64", sector: 4096, payload: 16 << 20,
			slots:  []KDF{{Type: KDFArgon2id, Time: 4, MemoryKiB: 32768, CPUs: 2}},
			maxMem: 32768,
		},
		{
			file: "luks2-argon2i.bin", version: 2, uuid: "33333333-3333-4333-8333-333333333333",
			cipher: "aes-xts-plain64", sector: 4096, payload: 16 << 20,
			slots:  []KDF{{Type: KDFArgon2i, Time: 5, MemoryKiB: 65536, CPUs: 1}},
			maxMem: 65536,
		},
		{
			file: "luks2-pbkdf2.bin", version: 2, uuid: "44444444-4444-4444-8444-444444444444",
			cipher: "aes-xts-plain64", sector: 4096, payload: 16 << 20,
			slots: []KDF{{Type: KDFPBKDF2, Hash: "sha512", Iterations: 1000}},
		},
		{
			file: "luks2-label.bin", version: 2, uuid: "55555555-5555-4555-8555-555555555555",
			label: "mylabel", subsystem: "mysubsystem",
			cipher: "aes-xts-plain64", sector: 4096, payload: 16 << 20,
			slots:  []KDF{{Type: KDFArgon2id, Time: 4, MemoryKiB: 32768, CPUs: 1}},
			maxMem: 32768,
		},
		{
			file: "luks2-twoslots.bin", version: 2,
			cipher: "aes-xts-plain64", sector: 4096, payload: 16 << 20,
			slots: []KDF{
				{Type: KDFArgon2id, Time: 4, MemoryKiB: 32768, CPUs: 1},
				{Type: KDFArgon2i, Time: 4, MemoryKiB: 131072, CPUs: 2},
			},
			maxMem: 131072,
		},
		{
			file: "luks2-meta32k.bin", version: 2,
			cipher: "aes-xts-plain64", sector: 4096, payload: 2 << 20,
			slots:  []KDF{{Type: KDFArgon2id, Time: 4, MemoryKiB: 32768, CPUs: 1}},
			maxMem: 32768,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, err := Parse(bytes.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if h.Version != tt.version || h.Cipher != tt.cipher || h.SectorSize != tt.sector || h.PayloadOffset != tt.payload {
				t.Errorf("got version=%d cipher=%q sector=%d payload=%d, want %d %q %d %d",
					h.Version, h.Cipher, h.SectorSize, h.PayloadOffset, tt.version, tt.cipher, tt.sector, tt.payload)
			}
			if tt.uuid != "" && h.UUID != tt.uuid {
				t.Errorf("UUID = %q, want %q", h.UUID, tt.uuid)
			}
			if len(h.UUID) != 36 {
				t.Errorf("UUID %q is not 36 characters", h.UUID)
			}
			if h.Label != tt.label || h.Subsystem != tt.subsystem {
				t.Errorf("label/subsystem = %q/%q, want %q/%q", h.Label, h.Subsystem, tt.label, tt.subsystem)
			}
			if h.KeySize != 64 {
				t.Errorf("KeySize = %d, want 64", h.KeySize)
			}
			active := h.ActiveKeyslots()
			if len(active) != len(tt.slots) {
				t.Fatalf("%d active keyslots, want %d: %+v", len(active), len(tt.slots), h.Keyslots)
			}
			for i, k := range active {
				if k.KDF != tt.slots[i] {
					t.Errorf("keyslot %d KDF = %+v, want %+v", k.ID, k.KDF, tt.slots[i])
				}
			}
			if got := h.MaxKDFMemoryKiB(); got != tt.maxMem {
				t.Errorf("MaxKDFMemoryKiB = %d, want %d", got, tt.maxMem)
			}
			if h.FromSecondary {
				t.Errorf("FromSecondary set on an intact header (%v)", h.PrimaryErr)
			}
		})
	}
}

func TestLUKS1InactiveSlots(t *testing.T) {
	h, err := Parse(bytes.NewReader(fixture(t, "luks1-pbkdf2.bin")))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Keyslots) != 8 {
		t.Fatalf("%d keyslots, want 8", len(h.Keyslots))
	}
	for _, k := range h.Keyslots[1:] {
		if k.Active {
			t.Errorf("keyslot %d active, want inactive", k.ID)
		}
	}
}

// damage flips one byte inside the JSON area of the copy at off.
func damage(b []byte, off int) []byte {
	c := bytes.Clone(b)
	c[off+4096+10] ^= 0xff
	return c
}

func TestPrimaryCorruptUsesSecondary(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		mangle func([]byte) []byte
	}{
		{"json-flip", "luks2-label.bin", func(b []byte) []byte { return damage(b, 0) }},
		{"checksum-flip", "luks2-argon2id.bin", func(b []byte) []byte { c := bytes.Clone(b); c[luks2CsumOff] ^= 1; return c }},
		{"magic-wiped", "luks2-label.bin", func(b []byte) []byte { c := bytes.Clone(b); clear(c[:4096]); return c }},
		{"magic-wiped-32k", "luks2-meta32k.bin", func(b []byte) []byte { c := bytes.Clone(b); clear(c[:32768]); return c }},
		{"json-flip-32k", "luks2-meta32k.bin", func(b []byte) []byte { return damage(b, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := Parse(bytes.NewReader(fixture(t, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			h, err := Parse(bytes.NewReader(tc.mangle(fixture(t, tc.file))))
			if err != nil {
				t.Fatalf("Parse with damaged primary: %v", err)
			}
			if !h.FromSecondary || h.PrimaryErr == nil {
				t.Errorf("FromSecondary=%v PrimaryErr=%v, want the secondary used with a reason", h.FromSecondary, h.PrimaryErr)
			}
			if h.UUID != orig.UUID || h.Label != orig.Label || h.MaxKDFMemoryKiB() != orig.MaxKDFMemoryKiB() {
				t.Errorf("secondary header differs: %+v vs %+v", h, orig)
			}
		})
	}
}

func TestBothCorrupt(t *testing.T) {
	b := fixture(t, "luks2-argon2id.bin")
	b = damage(damage(b, 0), 16384)
	_, err := Parse(bytes.NewReader(b))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	for _, want := range []string{"primary", "secondary", "checksum"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if k, err := Detect(bytes.NewReader(b)); k != KindLUKS2 || !errors.Is(err, ErrCorrupt) {
		t.Errorf("Detect = %v, %v; want luks2 + ErrCorrupt", k, err)
	}
}

func TestPrimaryOnlyIsEnough(t *testing.T) {
	// A device whose secondary is damaged still opens from the primary.
	b := damage(fixture(t, "luks2-argon2id.bin"), 16384)
	h, err := Parse(bytes.NewReader(b))
	if err != nil || h.FromSecondary {
		t.Fatalf("Parse = %+v, %v; want the primary", h, err)
	}
	// And a header cut off after the primary copy too.
	h, err = Parse(bytes.NewReader(fixture(t, "luks2-argon2id.bin")[:16384]))
	if err != nil || h.FromSecondary {
		t.Fatalf("truncated: Parse = %+v, %v; want the primary", h, err)
	}
}

func TestNewerSecondaryWins(t *testing.T) {
	// Bump the secondary's seqid and fix its checksum: the newer copy wins.
	b := bytes.Clone(fixture(t, "luks2-label.bin"))
	sec := b[16384:32768]
	sec[23]++
	clear(sec[luks2CsumOff : luks2CsumOff+luks2CsumLen])
	sum := sha256sum(sec)
	copy(sec[luks2CsumOff:], sum)
	h, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !h.FromSecondary {
		t.Error("older primary used, want the newer secondary")
	}
}

func TestNotLUKS(t *testing.T) {
	random := make([]byte, 1<<20)
	rand.Read(random)
	random[0] = 0 // never the magic by chance
	for name, b := range map[string][]byte{
		"random": random,
		"zeros":  make([]byte, 64<<10),
		"empty":  nil,
		"short":  []byte("LUK"),
		"ext4":   fixture(t, "ext4.bin"),
	} {
		if _, err := Parse(bytes.NewReader(b)); !errors.Is(err, ErrNotLUKS) {
			t.Errorf("%s: err = %v, want ErrNotLUKS", name, err)
		}
	}
}

func TestCorruptLUKS1(t *testing.T) {
	b := bytes.Clone(fixture(t, "luks1-pbkdf2.bin"))
	b[208] = 0x42 // keyslot 0 state
	if _, err := Parse(bytes.NewReader(b)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad keyslot state: err = %v, want ErrCorrupt", err)
	}
	if _, err := Parse(bytes.NewReader(fixture(t, "luks1-pbkdf2.bin")[:300])); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: err = %v, want ErrCorrupt", err)
	}
	// An unknown version is ErrUnsupported: TestUnsupportedIsNotCorrupt.
}

func TestDetect(t *testing.T) {
	for file, want := range map[string]Identity{
		"luks1-pbkdf2.bin":  {Kind: KindLUKS1, UUID: "11111111-1111-4111-8111-111111111111"},
		"luks2-label.bin":   {Kind: KindLUKS2, Label: "mylabel", UUID: "55555555-5555-4555-8555-555555555555"},
		"ext4.bin":          {Kind: KindExt4, Label: "myext4", UUID: "6f1c5d3a-2b7e-4c1a-9d0e-1234567890ab"},
		"ext2.bin":          {Kind: KindExt2, Label: "old"},
		"luks2-pbkdf2.bin":  {Kind: KindLUKS2, UUID: "44444444-4444-4444-8444-444444444444"},
		"luks2-argon2i.bin": {Kind: KindLUKS2, UUID: "33333333-3333-4333-8333-333333333333"},
	} {
		id, err := Identify(bytes.NewReader(fixture(t, file)))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if id.Kind != want.Kind || id.Label != want.Label || (want.UUID != "" && id.UUID != want.UUID) || id.Err != nil {
			t.Errorf("%s: got %v %q %q %v, want %v %q %q", file, id.Kind, id.Label, id.UUID, id.Err, want.Kind, want.Label, want.UUID)
		}
		if id.Kind.IsLUKS() != (id.LUKS != nil) {
			t.Errorf("%s: LUKS header presence does not match kind %v", file, id.Kind)
		}
		if k, err := Detect(bytes.NewReader(fixture(t, file))); k != want.Kind || err != nil {
			t.Errorf("%s: Detect = %v, %v", file, k, err)
		}
	}
	if k, err := Detect(bytes.NewReader(make([]byte, 8192))); k != KindUnknown || err != nil {
		t.Errorf("zeros: Detect = %v, %v; want unknown", k, err)
	}
}

func TestExt3(t *testing.T) {
	// ext2 fixture with has_journal set is what mke2fs -t ext3 writes.
	b := bytes.Clone(fixture(t, "ext2.bin"))
	b[1024+92] |= extCompatHasJournal
	if k, _ := Detect(bytes.NewReader(b)); k != KindExt3 {
		t.Errorf("Detect = %v, want ext3", k)
	}
}

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("i/o error") }

func TestIOErrorIsNotAVerdict(t *testing.T) {
	_, err := Parse(errReader{})
	if err == nil || errors.Is(err, ErrNotLUKS) || errors.Is(err, ErrCorrupt) {
		t.Errorf("err = %v, want a plain I/O error", err)
	}
	if _, err := Identify(errReader{}); err == nil {
		t.Error("Identify swallowed an I/O error")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"luks1-pbkdf2.bin", "luks2-argon2id.bin", "luks2-twoslots.bin", "ext4.bin"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte("LUKS\xba\xbe\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(bytes.NewReader(b))
		if err == nil {
			_ = h.MaxKDFMemoryKiB()
			if h.Version != 1 && h.Version != 2 {
				t.Fatalf("parsed version %d", h.Version)
			}
		} else if !errors.Is(err, ErrNotLUKS) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("bytes.Reader gave a non-verdict error: %v", err)
		}
		Identify(bytes.NewReader(b))
	})
}

func sha256sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// withJSON returns the luks2-argon2id fixture's primary copy with its JSON
// area replaced by js and the checksum recomputed, so fuzzing reaches the
// metadata parser instead of stopping at the checksum.
func withJSON(t testing.TB, js []byte) []byte {
	b := bytes.Clone(fixture(t, "luks2-argon2id.bin")[:16384])
	area := b[4096:]
	clear(area)
	copy(area, js)
	clear(b[luks2CsumOff : luks2CsumOff+luks2CsumLen])
	copy(b[luks2CsumOff:], sha256sum(b))
	return b
}

func TestBadMetadata(t *testing.T) {
	for name, js := range map[string]string{
		"not-json":      `{"keyslots":`,
		"bad-slot-id":   `{"keyslots":{"x":{"type":"luks2","kdf":{"type":"pbkdf2"}}},"segments":{}}`,
		"neg-memory":    `{"keyslots":{"0":{"type":"luks2","kdf":{"type":"argon2id","memory":-1}}},"segments":{}}`,
		"huge-memory":   `{"keyslots":{"0":{"type":"luks2","kdf":{"type":"argon2id","memory":99999999}}},"segments":{}}`,
		"bad-sector":    `{"keyslots":{},"segments":{"0":{"type":"crypt","offset":"0","sector_size":513}}}`,
		"bad-offset":    `{"keyslots":{},"segments":{"0":{"type":"crypt","offset":"-5","sector_size":512}}}`,
		"number-as-str": `{"keyslots":{"0":{"type":"luks2","kdf":{"type":"argon2id","memory":"1"}}}}`,
	} {
		_, err := Parse(bytes.NewReader(withJSON(t, []byte(js))))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	// The harness itself must produce something Parse accepts.
	js := fixture(t, "luks2-argon2id.bin")[4096:16384]
	if _, err := Parse(bytes.NewReader(withJSON(t, js[:bytes.IndexByte(js, 0)]))); err != nil {
		t.Fatalf("re-checksummed original JSON: %v", err)
	}
}

func FuzzLUKS2Metadata(f *testing.F) {
	js := fixture(f, "luks2-twoslots.bin")[4096:16384]
	f.Add(js[:bytes.IndexByte(js, 0)])
	f.Add([]byte(`{"keyslots":{"0":{"type":"luks2","kdf":{"type":"argon2id","memory":1}}},"segments":{"0":{"type":"crypt","offset":"1","sector_size":512}}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		if len(js) > 16384-4096 {
			return
		}
		h, err := Parse(bytes.NewReader(withJSON(t, js)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if m := h.MaxKDFMemoryKiB(); m < 0 || m > maxArgonMemKiB {
			t.Fatalf("MaxKDFMemoryKiB = %d out of range", m)
		}
	})
}

// Headers made with `luksFormat --header`: the data starts at offset 0 of the data device, and
// a LUKS2 segment to the device's end has no fixed size.
func TestDetachedFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		version int
		uuid    string
	}{
		{"luks2-detached.bin", 2, "66666666-6666-4666-8666-666666666666"},
		{"luks1-detached.bin", 1, "77777777-7777-4777-8777-777777777777"},
	} {
		h, err := Parse(bytes.NewReader(fixture(t, tc.file)))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if h.Version != tc.version || h.UUID != tc.uuid || h.PayloadOffset != 0 || h.DataSize != 0 || h.Cipher == "" {
			t.Fatalf("%s: %+v", tc.file, h)
		}
	}
	// A fixed-size segment.
	js := fixture(t, "luks2-argon2id.bin")[4096:16384]
	js = bytes.Replace(js[:bytes.IndexByte(js, 0)], []byte(`"size":"dynamic"`), []byte(`"size":"1048576"`), 1)
	h, err := Parse(bytes.NewReader(withJSON(t, js)))
	if err != nil || h.DataSize != 1<<20 {
		t.Fatalf("fixed segment: %+v, %v", h, err)
	}
}
