package vex

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseOpenVEX(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseOpenVEX(data)
		if err != nil {
			return
		}
		Filter(all, &Rules{Statements: st, Products: []string{"pkg:oci/app@sha256:abc123"}})
	})
}

func FuzzParseIgnore(f *testing.F) {
	f.Add([]byte("ignore:\n  - id: CVE-2023-45853\n    package: zlib\n    purl: pkg:deb/debian/zlib1g\n    reason: r\n    expires: 2026-06-30\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseIgnore(data)
		if err != nil {
			return
		}
		r := &Rules{Ignores: rules}
		Filter(all, r)
		r.Warnings()
	})
}
