package osrelease

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
)

// FuzzParse feeds every release-file parser, then Resolve, OSVEcosystem and
// Apply with the result. Seeds are the real files under testdata.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*/*")
	more, _ := filepath.Glob("testdata/*/*/*/*")
	for _, p := range append(files, more...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("ID=\"x\\\nVERSION_ID='\n"))
	parsers := []func(io.Reader) (*model.OS, error){
		ParseOSRelease, ParseLSBRelease, ParseAlpineRelease, ParseRedHatRelease, ParseDebianVersion,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cands := map[string]*model.OS{}
		for i, parse := range parsers {
			os, err := parse(strings.NewReader(string(data)))
			if err != nil {
				continue
			}
			if os.ID == "" {
				t.Fatalf("parser %d returned an OS without ID", i)
			}
			cands[precedence[i*2%len(precedence)]] = os
		}
		best := Resolve(cands)
		_ = OSVEcosystem(best)
		inv := &model.Inventory{OS: best, Packages: []model.Package{
			{Name: "a", Version: "1:2-3", Type: model.TypeRPM, PURL: string(data)},
			{Name: "b", Version: "1", Type: model.TypeDeb, PURL: "pkg:deb/debian/b@1"},
		}}
		Apply(inv)
	})
}
