package rpm

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/rpm/rpmdb"
	"mamori/internal/model"
)

const (
	sqliteFixture = "testdata/rpm418-sqlite/var/lib/rpm/rpmdb.sqlite"
	bdbFixture    = "testdata/rhel8-bdb/var/lib/rpm/Packages"
	ndbFixture    = "testdata/rpm418-ndb/usr/lib/sysimage/rpm/Packages.db"
)

func section(data []byte) *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
}

func readFixture(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// analyze runs the cataloger on data as the walk would, with its own temp
// dir, and checks that the temp dir is left empty.
func analyze(t *testing.T, path string, data []byte) ([]model.Package, error) {
	t.Helper()
	tmp := t.TempDir()
	c, err := New(WithTempDir(tmp))
	if err != nil {
		t.Fatal(err)
	}
	if c.Required(path, nil) != analyzer.Content {
		t.Fatalf("Required(%q) = Skip", path)
	}
	res, err := c.Analyze(context.Background(), analyzer.Input{Path: path, Content: section(data)})
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir not cleaned: %v", left)
	}
	if err != nil {
		return nil, err
	}
	return res.Packages, nil
}

type row struct{ name, version, arch, src, srcVer, license, purl string }

func rows(t *testing.T, pkgs []model.Package, path string) []row {
	t.Helper()
	var out []row
	for _, p := range pkgs {
		if p.Type != model.TypeRPM || p.Cataloger != Name || len(p.Locations) != 1 || p.Locations[0].Path != path {
			t.Errorf("bad common fields: %+v", p)
		}
		lic := strings.Join(p.Licenses, ",")
		out = append(out, row{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, lic, p.PURL})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// The packages of the SQLite fixture, as `rpm -qa` reports them
// (see testdata/NOTICE); gpg-pubkey is left out.
var fixtureRows = []row{
	{"libmamori-fixture", "1:1.2.3-4.el9", "noarch", "mamori-fixture", "1:1.2.3-4.el9", "MIT", "pkg:rpm/libmamori-fixture@1.2.3-4.el9?arch=noarch&epoch=1"},
	{"mamori-fixture", "1:1.2.3-4.el9", "noarch", "", "", "MIT and ASL 2.0", "pkg:rpm/mamori-fixture@1.2.3-4.el9?arch=noarch&epoch=1"},
	{"noepoch-fixture", "0.9-1", "noarch", "", "", "BSD", "pkg:rpm/noepoch-fixture@0.9-1?arch=noarch"},
}

func TestSQLite(t *testing.T) {
	for _, p := range []string{"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"} {
		pkgs, err := analyze(t, p, readFixture(t, sqliteFixture))
		if err != nil {
			t.Fatal(err)
		}
		if got := rows(t, pkgs, p); !reflect.DeepEqual(got, fixtureRows) {
			t.Errorf("got\n%v\nwant\n%v", got, fixtureRows)
		}
	}
}

func TestBerkeleyDB(t *testing.T) {
	p := "var/lib/rpm/Packages"
	pkgs, err := analyze(t, p, readFixture(t, bdbFixture))
	if err != nil {
		t.Fatal(err)
	}
	// As `rpm --define '_db_backend bdb_ro' -qa` reports it.
	want := []row{{"libuuid", "2.32.1-42.el8_8", "x86_64", "util-linux", "2.32.1-42.el8_8", "BSD", "pkg:rpm/libuuid@2.32.1-42.el8_8?arch=x86_64"}}
	if got := rows(t, pkgs, p); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestNDB(t *testing.T) {
	db := readFixture(t, ndbFixture)
	p := "usr/lib/sysimage/rpm/Packages.db"
	pkgs, err := analyze(t, p, db)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(t, pkgs, p); !reflect.DeepEqual(got, fixtureRows) {
		t.Errorf("got\n%v\nwant\n%v", got, fixtureRows)
	}
}

// goRPMDBTestdata returns the test data directory of the go-rpmdb module
// when the module cache holds it. Its databases were written by rpm in real
// images (CentOS 5 to 8, UBI 8 on s390x, Fedora 35, CBL-Mariner 2, SLE 15)
// and are too large to copy here.
func goRPMDBTestdata(t *testing.T) string {
	t.Helper()
	for _, root := range []string{os.Getenv("GOMODCACHE"), filepath.Join(os.Getenv("HOME"), "go", "pkg", "mod")} {
		if root == "" {
			continue
		}
		dir := filepath.Join(root, "github.com", "knqyf263", "go-rpmdb@v0.1.1", "pkg", "testdata")
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
	}
	t.Skip("go-rpmdb v0.1.1 test data not in the module cache (go mod download github.com/knqyf263/go-rpmdb@v0.1.1)")
	return ""
}

// TestRealDatabases cross-checks the readers against go-rpmdb's corpus:
// package counts are those of `rpm -qa` in each image (go-rpmdb's
// rpmdb_testcase_test.go) less the gpg-pubkey entries.
func TestRealDatabases(t *testing.T) {
	dir := goRPMDBTestdata(t)
	tests := []struct {
		file    string
		count   int
		name    string // one package checked in full
		version string
		src     string
	}{
		{"centos5-plain/Packages", 110, "", "", ""},
		{"centos7-many/Packages", 395, "", "", ""},
		{"centos8-modularitylabel/Packages", 517, "", "", ""},
		{"ubi8-s390x/Packages", 181, "", "", ""}, // big-endian Berkeley DB
		{"fedora35/rpmdb.sqlite", 137, "", "", ""},
		// As rpm -qa reported it in the SLE 15 SP3 BCI image.
		{"sle15-bci/Packages.db", 35, "libncurses6", "6.1-5.9.1", "ncurses"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readFixture(t, filepath.Join(dir, tt.file))
			pkgs, err := analyze(t, "var/lib/rpm/Packages", data)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkgs) != tt.count {
				t.Errorf("%d packages, want %d", len(pkgs), tt.count)
			}
			if tt.name == "" {
				return
			}
			for _, p := range pkgs {
				if p.Name == tt.name {
					if p.Version != tt.version || p.SourceName != tt.src {
						t.Errorf("%s = %+v", tt.name, p)
					}
					return
				}
			}
			t.Errorf("%s not found", tt.name)
		})
	}
}

// The cataloger turns every reader's failure into an error naming the
// path; the readers' own corruption cases are tested in package rpmdb.
func TestCorruptInputs(t *testing.T) {
	bdb := readFixture(t, bdbFixture)
	sq := readFixture(t, sqliteFixture)
	ndb := readFixture(t, ndbFixture)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrUnknownFormat},
		{"text", []byte("this is not an rpm database at all\n"), ErrUnknownFormat},
		{"bdb truncated", bdb[:len(bdb)/3], ErrCorrupt},
		{"ndb truncated", ndb[:len(ndb)-100], ErrCorrupt},
		{"sqlite truncated", sq[:len(sq)/2], ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := analyze(t, "var/lib/rpm/Packages", tt.data)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "var/lib/rpm/Packages") {
				t.Errorf("err = %v, want %v naming the path", err, tt.want)
			}
		})
	}
}

// hostileSQLite writes an SQLite database whose "Packages" is built by ddl.
func hostileSQLite(t *testing.T, ddl ...string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "h.sqlite")
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ddl {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return readFixture(t, p)
}

func TestHostileSQLite(t *testing.T) {
	tests := []struct {
		name string
		ddl  []string
	}{
		{"no Packages table", []string{"CREATE TABLE x (a)"}},
		{"recursive view", []string{"CREATE VIEW Packages AS WITH RECURSIVE c(blob) AS (SELECT 1 UNION ALL SELECT blob+1 FROM c) SELECT blob FROM c"}},
		{"expensive generated column", []string{
			"CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB GENERATED ALWAYS AS (zeroblob(900000000)) VIRTUAL)",
			"INSERT INTO Packages (hnum) VALUES (1)"}},
		{"oversized row", []string{
			"CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)",
			fmt.Sprintf("INSERT INTO Packages VALUES (1, zeroblob(%d))", rpmdb.MaxHeaderSize+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := hostileSQLite(t, tt.ddl...)
			start := time.Now()
			_, err := analyze(t, "var/lib/rpm/rpmdb.sqlite", data)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestOptionsAndCaps(t *testing.T) {
	if _, err := New(WithTempDir("relative/dir")); err == nil {
		t.Error("relative temp dir accepted")
	}
	if _, err := New(WithMaxDBSize(0)); err == nil {
		t.Error("zero cap accepted")
	}
	c, err := New(WithMaxDBSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	data := readFixture(t, bdbFixture)
	_, err = c.Analyze(context.Background(), analyzer.Input{Path: "var/lib/rpm/Packages", Content: section(data)})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "var/lib/rpm/Packages") {
		t.Errorf("err = %v, want ErrTooLarge naming the path", err)
	}
	if Default().Required("var/lib/rpm/Packages.db", nil) != analyzer.Content ||
		Default().Required("var/lib/rpm/Name", nil) != analyzer.Skip ||
		Default().Required("var/lib/rpm/rpmdb.sqlite-wal", nil) != analyzer.Skip {
		t.Error("Required")
	}
}

func TestParseSourceRPM(t *testing.T) {
	tests := []struct {
		in                     string
		name, version, release string
		ok                     bool
	}{
		{"openssl-3.0.7-27.el9.src.rpm", "openssl", "3.0.7", "27.el9", true},
		{"python3-pip-21.3.1-1.el9.src.rpm", "python3-pip", "21.3.1", "1.el9", true},
		{"util-linux-2.32.1-42.el8_8.src.rpm", "util-linux", "2.32.1", "42.el8_8", true},
		{"kernel-5.14.0-362.8.1.el9_3.nosrc.rpm", "kernel", "5.14.0", "362.8.1.el9_3", true},
		{"libncurses6-6.1-150000.5.15.1.src.rpm", "libncurses6", "6.1", "150000.5.15.1", true},
		{"openssl-3.0.7.src.rpm", "", "", "", false},
		{"-1-2.src.rpm", "", "", "", false},
		{"(none)", "", "", "", false},
		{"", "", "", "", false},
		{"a--.src.rpm", "", "", "", false},
	}
	for _, tt := range tests {
		n, v, r, ok := ParseSourceRPM(tt.in)
		if n != tt.name || v != tt.version || r != tt.release || ok != tt.ok {
			t.Errorf("ParseSourceRPM(%q) = %q %q %q %v", tt.in, n, v, r, ok)
		}
	}
}

func BenchmarkParseBDB(b *testing.B) {
	data := readFixture(b, bdbFixture)
	c := Default()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := c.Parse(context.Background(), bytes.NewReader(data), int64(len(data)), "var/lib/rpm/Packages"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSQLite(b *testing.B) {
	data := readFixture(b, sqliteFixture)
	c, err := New(WithTempDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Parse(context.Background(), bytes.NewReader(data), int64(len(data)), "var/lib/rpm/rpmdb.sqlite"); err != nil {
			b.Fatal(err)
		}
	}
}
