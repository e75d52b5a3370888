package gobinary

import (
	"bytes"
	"os/exec"
	"testing"
)

// FuzzParseBinary feeds arbitrary bytes to the build-information reader.
// Seeds: a real (stripped) Go ELF built from fixtureModule when the
// toolchain is present, its head, and minimal magic numbers.
func FuzzParseBinary(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("MZ\x90\x00"))
	f.Add([]byte("\xcf\xfa\xed\xfe"))
	f.Add(append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte{0}, 120)...))
	if _, err := exec.LookPath("go"); err == nil && !testing.Short() {
		b := buildFixture(f, "linux", "-s -w")
		f.Add(b[:4096])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parseBinary(bytes.NewReader(data), "fuzz")
		if err != nil && len(pkgs) != 0 {
			t.Fatalf("packages with error: %v", err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.PURL == "" {
				t.Fatalf("package without name or purl: %+v", p)
			}
		}
	})
}
