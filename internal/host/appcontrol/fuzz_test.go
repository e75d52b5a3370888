package appcontrol

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzImport: any document imports into a valid list or fails with
// ErrFormat; an imported list exports and re-imports to the same entries.
func FuzzImport(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"format":"mamori-appcontrol-allowlist","version":1,"generated":"2026-01-01T00:00:00Z","entries":[{"sha256":"` + h + `","path":"/usr/bin/x","kind":"executable","source":"dpkg","package":"x","added":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"format":"mamori-appcontrol-allowlist","version":1,"entries":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Import(bytes.NewReader(b))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := l.Export(&buf, ""); err != nil {
			t.Fatal(err)
		}
		l2, err := Import(&buf)
		if err != nil {
			t.Fatalf("re-import of an export: %v", err)
		}
		if l2.Len() != l.Len() {
			t.Fatalf("round trip %d -> %d entries", l.Len(), l2.Len())
		}
	})
}

// FuzzParseMD5Sums: paths that parse never climb out of the root.
func FuzzParseMD5Sums(f *testing.F) {
	f.Add("7a4179e324c784b99e98fedee05260f7  bin/cat\n")
	f.Add("7a4179e324c784b99e98fedee05260f7  a/../../b\n")
	f.Fuzz(func(t *testing.T, s string) {
		sums, err := ParseMD5Sums(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range sums {
			if strings.HasPrefix(m.Path, "/") || m.Path == ".." || strings.HasPrefix(m.Path, "../") {
				t.Fatalf("path %q accepted", m.Path)
			}
		}
	})
}

// FuzzParseRPMFiles: accepted paths are absolute and clean.
func FuzzParseRPMFiles(f *testing.F) {
	f.Add("bash-5.2-1.x86_64\t8\t" + strings.Repeat("0", 64) + "\t33261\t/usr/bin/bash\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = ParseRPMFiles(strings.NewReader(s), func(r RPMFile) error {
			if !strings.HasPrefix(r.Path, "/") || strings.Contains(r.Path, "/../") {
				t.Fatalf("path %q accepted", r.Path)
			}
			return nil
		})
	})
}

// FuzzClassify: hostile ELF headers (huge phnum, offsets past the end)
// never panic or read unbounded.
func FuzzClassify(f *testing.F) {
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	hdr[16] = elfTypeDyn
	f.Add(hdr, uint32(0o644))
	f.Add([]byte("#!/bin/sh"), uint32(0o755))
	f.Fuzz(func(t *testing.T, b []byte, mode uint32) {
		Classify(bytes.NewReader(b), int64(len(b)), "/x", mode)
	})
}
