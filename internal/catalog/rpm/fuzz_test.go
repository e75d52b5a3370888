package rpm

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// FuzzParse runs the whole cataloger on any file, the SQLite path through
// its temp file included, and checks that the temp directory is always
// emptied. It links SQLite, whose coverage instrumentation makes it slow;
// the format readers are fuzzed fast in package rpmdb.
func FuzzParse(f *testing.F) {
	f.Add(readFixture(f, sqliteFixture))
	f.Add(readFixture(f, bdbFixture)[:8192])
	f.Add(readFixture(f, ndbFixture))
	tmp := f.TempDir()
	c, err := New(WithTempDir(tmp))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := c.Parse(context.Background(), bytes.NewReader(data), int64(len(data)), "var/lib/rpm/Packages")
		if err == nil {
			for _, p := range pkgs {
				if p.Name == "" || p.Version == "" || p.PURL == "" || p.Name == "gpg-pubkey" {
					t.Fatalf("bad package %+v", p)
				}
			}
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("temp dir not emptied: %v", left)
		}
	})
}
