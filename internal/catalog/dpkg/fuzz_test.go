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

func FuzzParseMD5sums(f *testing.F) {
	f.Add([]byte("d41d8cd98f00b204e9800998ecf8427e  usr/bin/x\n"), "var/lib/dpkg/info/a:amd64.md5sums")
	f.Add([]byte("0123456789abcdef0123456789abcdef */../x\n\n  \n"), "var/lib/dpkg/status.d/b.md5sums")
	f.Fuzz(func(t *testing.T, data []byte, file string) {
		owned, _, err := ParseMD5sums(context.Background(), strings.NewReader(string(data)), file)
		if err != nil {
			return
		}
		for _, o := range owned {
			if o.Path == "" || strings.HasPrefix(o.Path, "/") || strings.Contains("/"+o.Path+"/", "/../") || len(o.Digest) != 32 {
				t.Fatalf("bad owned file %+v", o)
			}
		}
	})
}
