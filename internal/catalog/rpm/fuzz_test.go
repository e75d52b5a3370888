package rpm

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// FuzzParseHeader feeds header blobs, seeded with the fixture's real ones.
func FuzzParseHeader(f *testing.F) {
	for _, b := range sqliteBlobs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHeader(data)
		if err == nil && h == nil {
			t.Fatal("nil header without error")
		}
	})
}

// FuzzReadBDB feeds Berkeley DB files, seeded with the RHEL 8 fixture.
func FuzzReadBDB(f *testing.F) {
	f.Add(readFixture(f, bdbFixture))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readBDB(context.Background(), bytes.NewReader(data), int64(len(data)))
	})
}

// FuzzReadNDB feeds NDB files, seeded with one written from the fixture's
// headers.
func FuzzReadNDB(f *testing.F) {
	f.Add(writeNDB(sqliteBlobs(f)))
	f.Add(writeNDB(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readNDB(context.Background(), bytes.NewReader(data), int64(len(data)))
	})
}

// FuzzParse runs the whole cataloger on any file, SQLite through its temp
// file included, and checks the temp directory is always emptied.
func FuzzParse(f *testing.F) {
	f.Add(readFixture(f, sqliteFixture))
	f.Add(readFixture(f, bdbFixture)[:8192])
	f.Add(writeNDB(sqliteBlobs(f)))
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
		if left, _ := readDirNames(tmp); len(left) != 0 {
			t.Fatalf("temp dir not emptied: %v", left)
		}
	})
}

func readDirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}
