package cryptsetup

import (
	"slices"
	"testing"
)

func TestOpenArgsWithDetachedHeader(t *testing.T) {
	got := OpenArgsFor("/dev/vda", OpenOptions{ReadOnly: true, Header: "/dev/vdb"})
	want := []string{"open", "--type", "luks", "/dev/vda", MapperName, "--key-file=-", "--disable-keyring", "--readonly", "--header", "/dev/vdb"}
	if !slices.Equal(got, want) {
		t.Fatalf("OpenArgsFor = %q, want %q", got, want)
	}
	if got := OpenArgsFor("/dev/vda", OpenOptions{}); slices.Contains(got, "--header") {
		t.Fatalf("no header asked for, got %q", got)
	}
}
