package java

import (
	"context"
	"testing"
)

// FuzzArchive feeds arbitrary bytes to the archive walk as a top-level jar,
// with small caps so that each input is cheap. Seeds: a Maven jar, a war
// with deflated and stored nested jars, a manifest-only jar and a 12-deep
// nested jar.
func FuzzArchive(f *testing.F) {
	lib := jar(f, "org.slf4j", "slf4j-api", "2.0.9")
	f.Add(lib)
	f.Add(makeZip(f, manifest(), member{name: "WEB-INF/lib/a-1.0.jar", data: lib}, member{name: "WEB-INF/lib/b-2.0.jar", data: lib, stored: true}))
	f.Add(makeZip(f, manifest("Bundle-SymbolicName", "org.x.y", "Bundle-Version", "1.0")))
	f.Add(deepJar(f, 12, true))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	lim := limits{depth: 4, totalBytes: 4 << 20, entryBytes: 1 << 20, entries: 2000, metaBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Cataloger{lim: lim}
		res, err := c.Analyze(context.Background(), analyzerInput("fuzz.jar", data))
		if res == nil && err == nil {
			t.Fatal("nil result without error")
		}
		if res != nil {
			for _, p := range res.Packages {
				if p.Name == "" || p.Version == "" || len(p.Locations) != 1 {
					t.Fatalf("bad package %+v", p)
				}
			}
		}
	})
}

// FuzzManifest feeds arbitrary bytes to the manifest and pom.properties parsers.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(manifest("Bundle-SymbolicName", "org.apache.commons.commons-text", "Bundle-Version", "1.9").data))
	f.Add([]byte(pom("g", "a", "1").data))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := parseManifest(data)
		id := identity{fileName: "x-1.0.jar", manifest: m}
		if p, ok := parsePomProperties(data); ok {
			id.poms = append(id.poms, p)
		}
		for _, c := range id.coordinates() {
			if c.artifact == "" || c.version == "" {
				t.Fatalf("empty coordinates %+v", c)
			}
		}
	})
}
