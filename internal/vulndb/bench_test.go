package vulndb

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// realDataDir is the shared OSV snapshot; benchmarks skip without it.
const realDataDir = "/work/shared/data/osv"

func needRealData(b *testing.B) {
	b.Helper()
	if _, err := os.Stat(realDataDir); err != nil {
		b.Skipf("real OSV data not present at %s", realDataDir)
	}
}

// lookupKeys mixes hits (packages with many advisories) and misses (the
// common case when matching: most installed packages have none).
var lookupKeys = [][2]string{
	{"Debian:12", "zlib"}, {"Debian:12", "openssl"}, {"Debian:12", "bash"}, {"Go", "stdlib"},
	{"Go", "golang.org/x/net"}, {"npm", "lodash"}, {"npm", "left-pad"}, {"PyPI", "django"},
	{"PyPI", "requests"}, {"AlmaLinux:9", "openssl-libs"}, {"Alpine:v3.11", "musl"},
	{"crates.io", "tokio"}, {"crates.io", "no-such-crate"}, {"Maven", "org.example:none"},
	{"Go", "github.com/example/none"}, {"npm", "express"},
}

func fileSize(b *testing.B, f string) int64 {
	fi, err := os.Stat(f)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func BenchmarkStoreImportBolt(b *testing.B) {
	needRealData(b)
	ctx := context.Background()
	var records int
	var size int64
	for b.Loop() {
		dir := b.TempDir()
		res, err := Import(ctx, dir, realDataDir)
		if err != nil {
			b.Fatal(err)
		}
		records, size = res.Records, fileSize(b, filepath.Join(dir, FileName))
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

func BenchmarkStoreImportSQLite(b *testing.B) {
	needRealData(b)
	ctx := context.Background()
	var records int
	var size int64
	for b.Loop() {
		file := filepath.Join(b.TempDir(), "vulndb.sqlite")
		n, err := buildSQLite(ctx, file, realDataDir)
		if err != nil {
			b.Fatal(err)
		}
		records, size = n, fileSize(b, file)
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

func BenchmarkStoreLookupBolt(b *testing.B) {
	needRealData(b)
	dir := b.TempDir()
	if _, err := Import(context.Background(), dir, realDataDir); err != nil {
		b.Fatal(err)
	}
	db, err := Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.Run("mixed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := lookupKeys[i%len(lookupKeys)]
			if _, err := db.Lookup(k[0], k[1]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Lookup("npm", "left-pad"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkStoreLookupSQLite(b *testing.B) {
	needRealData(b)
	file := filepath.Join(b.TempDir(), "vulndb.sqlite")
	if _, err := buildSQLite(context.Background(), file, realDataDir); err != nil {
		b.Fatal(err)
	}
	s, err := openSQLite(file)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	b.Run("mixed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := lookupKeys[i%len(lookupKeys)]
			if _, err := s.lookup(k[0], k[1]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.lookup("npm", "left-pad"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
