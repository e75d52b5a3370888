package php

import (
	"os"
	"path/filepath"
	"testing"
)

func seed(f *testing.F, patterns ...string) {
	f.Helper()
	n := 0
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no seed files for %v", patterns)
	}
}

func fuzzParse(f *testing.F, parse parseFunc) {
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parse("x", data)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if !validVersion(p.Version) || p.PURL == "" || len(p.Locations) != 1 {
				t.Fatalf("malformed package %+v", p)
			}
		}
	})
}

func FuzzInstalledJSON(f *testing.F) {
	seed(f, "testdata/rootfs/*/*/*/vendor/composer/installed.json", "testdata/rootfs/*/*/vendor/composer/installed.json")
	fuzzParse(f, parseInstalledJSON)
}

func FuzzComposerLock(f *testing.F) {
	seed(f, "testdata/src/*/composer.lock")
	fuzzParse(f, parseComposerLock)
}
