package secret

import (
	"strings"
	"testing"
)

// FuzzScan checks that no input crashes the scanner or leaks a raw secret
// into redacted evidence, and that line numbers stay inside the input.
func FuzzScan(f *testing.F) {
	for _, c := range ruleCases() {
		f.Add(c.text)
	}
	f.Add("")
	f.Add("\x00\x01binary")
	f.Add("password=\npassword: \"\"\n-----BEGIN RSA PRIV" + "ATE KEY-----\n-----END")
	s, err := NewScanner()
	if err != nil {
		f.Fatal(err)
	}
	show, err := NewScanner(WithShowSecrets(true))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		lines := strings.Count(in, "\n") + 1
		red := s.Scan("f", []byte(in))
		raw := show.Scan("f", []byte(in))
		if len(red) != len(raw) {
			t.Fatalf("redacted %d findings, raw %d", len(red), len(raw))
		}
		for i, f := range red {
			if f.Location.StartLine < 1 || f.Location.EndLine < f.Location.StartLine || f.Location.EndLine > lines {
				t.Fatalf("lines %d-%d of %d", f.Location.StartLine, f.Location.EndLine, lines)
			}
			if len(raw[i].Evidence) >= 8 && strings.Contains(f.Evidence, raw[i].Evidence) {
				t.Fatalf("evidence %q holds the raw secret", f.Evidence)
			}
			if !strings.Contains(f.Evidence, "****(") {
				t.Fatalf("evidence %q not redacted", f.Evidence)
			}
		}
		_ = s.ScanText("Env[0]", withAssignments(in))
	})
}
