package dpkg

import (
	"context"
	"os"
	"strings"
	"testing"
)

func FuzzParseStatus(f *testing.F) {
	for _, p := range []string{"testdata/debian12/var/lib/dpkg/status", "testdata/distroless/var/lib/dpkg/status.d/libc6"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data, false)
		}
	}
	f.Add([]byte(genStatus(3)), true)
	f.Add([]byte("Package: a\r\nVersion: 1\r\n \r\n\tx\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, statusD bool) {
		pkgs, _, err := ParseStatus(context.Background(), strings.NewReader(string(data)), StatusPath, statusD)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("incomplete package %+v", p)
			}
			if (p.SourceName == "") != (p.SourceVersion == "") {
				t.Fatalf("source name without version: %+v", p)
			}
		}
	})
}
