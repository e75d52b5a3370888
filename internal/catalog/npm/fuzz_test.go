package npm

import (
	"os"
	"path/filepath"
	"testing"
)

// seed adds the testdata files matching pattern to the fuzz corpus.
func seed(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files for %s: %v", pattern, err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// fuzzParse checks the parser's contract on arbitrary input: no panic, and
// every package it returns is well-formed.
func fuzzParse(f *testing.F, parse parseFunc) {
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parse("x", data)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if !validName(p.Name) || !validVersion(p.Version) || p.PURL == "" || len(p.Locations) != 1 {
				t.Fatalf("malformed package %+v", p)
			}
		}
	})
}

func FuzzPackageJSON(f *testing.F) {
	seed(f, "testdata/rootfs/app/node_modules/*/package.json")
	f.Add([]byte(`{"name":"a","version":"1.0.0","license":{"type":"MIT"},"licenses":[{"type":"ISC"},"BSD"]}`))
	fuzzParse(f, parsePackageJSON)
}

func FuzzPackageLock(f *testing.F) {
	seed(f, "testdata/lock/npm-v*/package-lock.json")
	fuzzParse(f, parsePackageLock)
}

func FuzzYarnLock(f *testing.F) {
	seed(f, "testdata/lock/yarn-*/yarn.lock")
	fuzzParse(f, parseYarnLock)
}

func FuzzPNPMLock(f *testing.F) {
	seed(f, "testdata/lock/pnpm-v*/pnpm-lock.yaml")
	fuzzParse(f, parsePNPMLock)
}
