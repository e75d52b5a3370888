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
			if f.ID == ruleK8sSecret.ID {
				if strings.Contains(f.Evidence, "****") || f.Evidence != raw[i].Evidence {
					t.Fatalf("Secret object evidence %q / %q", f.Evidence, raw[i].Evidence)
				}
				continue // names the object and its keys, never values
			}
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

// FuzzDecode drives the decoding stage and the YAML/JSON structure
// readers with arbitrary bytes: every token lies inside the input, key
// paths come back for any position, and nothing panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Secret\ndata:\n  a: aGVsbG8gd29ybGQgdG9rZW4=\n"))
	f.Add([]byte(`{"kind":"List","items":[{"kind":"Secret","stringData":{"p":"x"}}]}`))
	f.Add([]byte("0x68656c6c6f20776f726c6420746f6b656e aGk%3D%3D &a=b%2Fc"))
	f.Add([]byte("a: &x [*x, *x]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		findTokens(in, func(tk token) bool {
			if tk.start < 0 || tk.end > len(in) || tk.start >= tk.end {
				t.Fatalf("token %+v outside %d bytes", tk, len(in))
			}
			decodeToken(in, tk)
			return true
		})
		if len(in) > maxStructuredSize {
			return
		}
		docs := parseDocuments(in)
		idx := newPathIndex(docs)
		for line := 0; line < 5; line++ {
			idx.at(line, 1)
		}
		k8sSecrets(docs)
	})
}
