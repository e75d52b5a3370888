package python

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

func FuzzMetadata(f *testing.F) {
	seed(f, "testdata/rootfs/*/lib/*/*/*/METADATA", "testdata/rootfs/*/lib/*/*/*/PKG-INFO", "testdata/rootfs/usr/lib/python2.7/*.egg-info")
	fuzzParse(f, parseMetadata)
}

func FuzzPoetryLock(f *testing.F) {
	seed(f, "testdata/src/poetry-*/poetry.lock")
	fuzzParse(f, parsePoetryLock)
}

func FuzzPipfileLock(f *testing.F) {
	seed(f, "testdata/src/*/Pipfile.lock")
	fuzzParse(f, parsePipfileLock)
}

func FuzzRequirements(f *testing.F) {
	seed(f, "testdata/src/reqs/*.txt", "testdata/src/reqs/requirements/*.txt")
	fuzzParse(f, parseRequirements)
}
