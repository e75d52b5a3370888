package apk

import (
	"context"
	"os"
	"strings"
	"testing"
)

func FuzzParseInstalled(f *testing.F) {
	if data, err := os.ReadFile("testdata/alpine3184/" + InstalledPath); err == nil {
		f.Add(data)
	}
	f.Add([]byte(genInstalled(2)))
	f.Add([]byte("P:a\r\nV:1\r\n\r\nP:b\nV:2\no:c\nL:MIT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _, err := ParseInstalled(context.Background(), strings.NewReader(string(data)), InstalledPath)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}
