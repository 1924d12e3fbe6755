package version

import "testing"

func TestStringPrefersStamp(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "1.2.3"
	if got := String(); got != "1.2.3" {
		t.Fatalf("String() = %q; want %q", got, "1.2.3")
	}
	Version = ""
	if got := String(); got == "" {
		t.Fatal("String() is empty without a stamp; want a fallback")
	}
}
