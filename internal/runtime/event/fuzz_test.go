package event

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSanitize: whatever the input, the rendering is one line of valid
// UTF-8 without control characters, and bounded.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\xff", "\u202e", `\x41`, strings.Repeat("é", 600)} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = limit % 4096
		got := Sanitize(s, limit)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("control %U in %q", r, got)
			}
		}
		if limit > 0 && len(got) > 4*limit+32 {
			t.Fatalf("limit %d gave %d bytes", limit, len(got))
		}
		if limit <= 0 && s == got && !clean(s) {
			t.Fatalf("unclean input returned as is: %q", s)
		}
	})
}
