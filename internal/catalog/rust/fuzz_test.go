package rust

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCargoLock feeds arbitrary bytes to the Cargo.lock parser, seeded with
// the v1, v3 and v4 fixtures.
func FuzzCargoLock(f *testing.F) {
	for _, v := range []string{"v1", "v3", "v4"} {
		b, err := os.ReadFile(filepath.Join("testdata", v, "Cargo.lock"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parseCargoLock(data, "Cargo.lock")
		if err != nil && pkgs != nil {
			t.Fatal("packages with error")
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("empty name or version: %+v", p)
			}
		}
	})
}

// FuzzAuditJSON feeds arbitrary bytes to the audit JSON parser.
func FuzzAuditJSON(f *testing.F) {
	f.Add([]byte(auditJSON))
	f.Add([]byte(`{"packages":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parseAuditJSON(data, "x")
		if err != nil && pkgs != nil {
			t.Fatal("packages with error")
		}
	})
}

// FuzzAuditableBinary feeds arbitrary bytes to the executable reader
// (ELF, PE and Mach-O section lookup, zlib, JSON), seeded with a gcc-built
// ELF holding a real audit section when gcc and objcopy are present.
func FuzzAuditableBinary(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte("MZ\x90\x00"))
	f.Add([]byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"))
	f.Add(zlibBytes(f, []byte(auditJSON)))
	if !testing.Short() {
		if b := tryAuditableELF(f); b != nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseAuditableBinary(bytes.NewReader(data), "x") // must not panic or hang
	})
}

func tryAuditableELF(f *testing.F) []byte {
	if _, err := lookTools(); err != nil {
		return nil
	}
	b := auditableELF(f, zlibBytes(f, []byte(auditJSON)))
	// Drop the padding so the fuzzer mutates the ELF, not zeros.
	return bytes.TrimRight(b, "\x00")
}
