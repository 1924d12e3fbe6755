//go:build linux || darwin

package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// The durable stream's records describe the files exactly (truncated content, new mode) and
// survive their one-line form.
func TestWriteDurableRecords(t *testing.T) {
	root := t.TempDir()
	var recs []DurableRecord
	if err := WriteDurable(root, "round01", 7, 4096, 3, func(d DurableRecord) { recs = append(recs, d) }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("%d records, want 7", len(recs))
	}
	for _, d := range recs {
		back, err := ParseDurableRecord(d.String())
		if err != nil || back != d {
			t.Fatalf("record %q parsed back as %+v, %v", d.String(), back, err)
		}
		b, err := os.ReadFile(filepath.Join(root, d.Path))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		fi, _ := os.Stat(filepath.Join(root, d.Path))
		if hex.EncodeToString(sum[:]) != d.SHA256 || len(b) >= 4096 || fi.Mode().Perm() != d.Mode || d.Mode == 0o644 {
			t.Fatalf("%s: %d bytes, mode %v; record %+v", d.Path, len(b), fi.Mode(), d)
		}
	}
	if _, err := ParseDurableRecord("a b"); err == nil {
		t.Fatal("a two-field record parsed")
	}
}
