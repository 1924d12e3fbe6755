package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/mnt/plain", "/mnt/plain"},
		{`/Volumes/My\040Drive`, "/Volumes/My Drive"},
		{`/a\011b\012c`, "/a\tb\nc"},
		{`/back\134slash`, `/back\slash`},
		{`/ends\040`, "/ends "}, // an escape as the last four bytes (the guest's copy missed it)
		{`/short\04`, `/short\04`},
		{`/not\0x9octal`, `/not\0x9octal`},
		{`/big\777`, `/big\777`}, // over one byte: not an escape
		{`\`, `\`},
		{"", ""},
	} {
		if got := Unescape(tc.in); got != tc.want {
			t.Errorf("Unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
