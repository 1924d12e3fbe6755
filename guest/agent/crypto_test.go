package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

func serpentHeader() *luksheader.Header {
	return &luksheader.Header{Version: 2, Cipher: "serpent-xts-plain64", Keyslots: []luksheader.Keyslot{
		{Active: true, AreaCipher: "serpent-xts-plain64", AFHash: "sha256", KDF: luksheader.KDF{Type: "argon2id"}}}}
}

func TestUnlockLoadsOnlyTheHeadersCryptoModules(t *testing.T) {
	a, f := newTestAgent(t)
	var asked []string
	a.deps.ReadHeader = func(dev string) (*luksheader.Header, error) { return serpentHeader(), nil }
	a.deps.Features = func(names ...string) (int, error) { asked = append(asked, names...); return 1, nil }
	c := client(t, a)
	if _, err := c.Unlock(context.Background(), control.UnlockRequest{}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(asked, ",") != "serpent,xts,ecb" {
		t.Fatalf("features asked = %v; want serpent,xts,ecb", asked)
	}
	if !f.mapped {
		t.Fatal("cryptsetup open did not run")
	}
	found := false
	for _, ev := range a.tl.Events() {
		found = found || (ev.Kind == control.EventStep && ev.Step == "crypto-modules")
	}
	if !found {
		t.Error("no crypto-modules step in the timeline")
	}
}

// What the guest lacks is refused before cryptsetup runs, and the message never blames the drive.
func TestUnlockRefusesWhatTheGuestLacks(t *testing.T) {
	for name, tc := range map[string]struct {
		header   func(string) (*luksheader.Header, error)
		features func(...string) (int, error)
		says     string
	}{
		"no module": {
			func(string) (*luksheader.Header, error) { return serpentHeader(), nil },
			func(n ...string) (int, error) { return 0, fmt.Errorf("serpent: %w", initsys.ErrNoFeature) },
			"this drive uses serpent-xts-plain64",
		},
		"unknown cipher": {
			func(string) (*luksheader.Header, error) {
				return &luksheader.Header{Version: 1, Cipher: "anubis-xts-plain64", HashSpec: "sha256"}, nil
			},
			func(n ...string) (int, error) { return 0, nil },
			"anubis-xts-plain64",
		},
		"unknown kdf": {
			func(string) (*luksheader.Header, error) {
				return nil, &luksheader.UnsupportedError{What: `the key derivation "scrypt"`}
			},
			func(n ...string) (int, error) { return 0, nil },
			"scrypt",
		},
	} {
		a, f := newTestAgent(t)
		a.deps.ReadHeader, a.deps.Features = tc.header, tc.features
		c := client(t, a)
		_, err := c.Unlock(context.Background(), control.UnlockRequest{}, []byte("right"))
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Code != control.CodeUnsupportedCrypto || !strings.Contains(ce.Message, tc.says) ||
			!strings.Contains(ce.Message, "cannot open yet; nothing was changed") || strings.Contains(ce.Message, "damaged") {
			t.Errorf("%s: Unlock = %v; want unsupported-crypto naming %q", name, err, tc.says)
		}
		if f.mapped || a.State() != control.StateReady {
			t.Errorf("%s: cryptsetup ran or the agent left ready", name)
		}
	}
}

// A header our parser cannot read is cryptsetup's to judge (it knows more layouts).
func TestUnlockLeavesUnparsableHeadersToCryptsetup(t *testing.T) {
	a, f := newTestAgent(t)
	a.deps.ReadHeader = func(string) (*luksheader.Header, error) { return nil, luksheader.ErrCorrupt }
	a.deps.Features = func(n ...string) (int, error) { t.Error("modules loaded for an unreadable header"); return 0, nil }
	if _, err := client(t, a).Unlock(context.Background(), control.UnlockRequest{}, []byte("right")); err != nil || !f.mapped {
		t.Fatalf("Unlock = %v, mapped %v", err, f.mapped)
	}
}

func TestResolveSourceForMountAndCheck(t *testing.T) {
	a, _ := newTestAgent(t)
	ctx := context.Background()
	if _, err := a.resolveSource(ctx, "", "mount it"); err == nil || !strings.Contains(err.Error(), "unlock it, then mount it") {
		t.Fatalf("LUKS disk before unlock: %v", err)
	}
	src, err := a.resolveSource(ctx, "/dev/vdb", "check")
	if err != nil || src.dev != "/dev/vdb" || src.mapped || src.in.Type != "ext4" {
		t.Fatalf("plain disk: %+v, %v", src, err)
	}
	if _, err := client(t, a).Unlock(ctx, control.UnlockRequest{}, []byte("right")); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{"", "/dev/vda", "/dev/mapper/luksmount"} {
		src, err := a.resolveSource(ctx, req, "check")
		if err != nil || !src.mapped || src.dev != "/dev/mapper/luksmount" || src.in.Label != "data" {
			t.Fatalf("unlocked, request %q: %+v, %v; want the mapping", req, src, err)
		}
	}
	if src, err := a.resolveSource(ctx, "/dev/vdb", "check"); err != nil || src.mapped || src.dev != "/dev/vdb" {
		t.Fatalf("unlocked, another disk: %+v, %v", src, err)
	}
}
