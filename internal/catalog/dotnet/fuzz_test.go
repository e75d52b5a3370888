package dotnet

import (
	"os"
	"testing"
)

// FuzzDepsJSON feeds arbitrary bytes to the deps.json parser, seeded with
// the fixture.
func FuzzDepsJSON(f *testing.F) {
	b, err := os.ReadFile("testdata/app/webapp.deps.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"libraries":{"A/1.0":{"type":"package"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parseDepsJSON(data, "x")
		if err != nil && pkgs != nil {
			t.Fatal("packages with error")
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}
