package dpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// catalog offers every file under testdata/<dir> to the cataloger the way
// the layer walk does and returns what it found.
func catalog(t *testing.T, dir string) []model.Package {
	t.Helper()
	c := New()
	root := filepath.Join("testdata", dir)
	var pkgs []model.Package
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if c.Required(rel, nil) != analyzer.Content {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		res, err := c.Analyze(context.Background(), analyzer.Input{Path: rel, Content: section(data)})
		if err != nil {
			t.Fatalf("Analyze(%s): %v", rel, err)
		}
		pkgs = append(pkgs, res.Packages...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func section(data []byte) *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
}

type row struct{ name, version, arch, srcName, srcVersion, purl string }

func rows(pkgs []model.Package, path string, t *testing.T) []row {
	var out []row
	for _, p := range pkgs {
		if p.Type != model.TypeDeb || p.Cataloger != Name || len(p.Locations) != 1 || p.Locations[0].Path != path {
			t.Errorf("bad common fields: %+v", p)
		}
		out = append(out, row{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.PURL})
	}
	return out
}

func TestDebian12Status(t *testing.T) {
	got := rows(catalog(t, "debian12"), StatusPath, t)
	want := []row{
		{"base-files", "12.4+deb12u11", "amd64", "", "", "pkg:deb/debian/base-files@12.4%2Bdeb12u11?arch=amd64"},
		{"bash", "5.2.15-2+b8", "amd64", "bash", "5.2.15-2", "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64"},
		{"bsdutils", "1:2.38.1-5+deb12u3", "amd64", "util-linux", "2.38.1-5+deb12u3", "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64"},
		{"cpp", "4:12.2.0-3", "amd64", "gcc-defaults", "1.203", "pkg:deb/debian/cpp@4:12.2.0-3?arch=amd64"},
		{"git", "1:2.39.5-0+deb12u3", "amd64", "", "", "pkg:deb/debian/git@1:2.39.5-0%2Bdeb12u3?arch=amd64"},
		{"libc6", "2.36-9+deb12u14", "amd64", "glibc", "2.36-9+deb12u14", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64"},
		{"libcap2", "1:2.66-4+deb12u2+b2", "amd64", "libcap2", "1:2.66-4+deb12u2", "pkg:deb/debian/libcap2@1:2.66-4%2Bdeb12u2%2Bb2?arch=amd64"},
		{"libgmp10", "2:6.2.1+dfsg1-1.1", "amd64", "gmp", "2:6.2.1+dfsg1-1.1", "pkg:deb/debian/libgmp10@2:6.2.1%2Bdfsg1-1.1?arch=amd64"},
		{"libmagic1", "1:5.44-3", "amd64", "file", "1:5.44-3", "pkg:deb/debian/libmagic1@1:5.44-3?arch=amd64"},
		{"libssl3", "3.0.19-1~deb12u2", "amd64", "openssl", "3.0.19-1~deb12u2", "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64"},
		{"tzdata", "2025b-0+deb12u2", "all", "", "", "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all"},
		{"zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib", "1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
}

func TestDistrolessStatusD(t *testing.T) {
	got := rows(catalog(t, "distroless"), StatusDirPath+"/libc6", t)
	want := []row{{"libc6", "2.36-9+deb12u14", "amd64", "glibc", "2.36-9+deb12u14", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRequired(t *testing.T) {
	c := New()
	for p, want := range map[string]analyzer.Need{
		"var/lib/dpkg/status":                   analyzer.Content,
		"var/lib/dpkg/status.d/libc6":           analyzer.Content,
		"var/lib/dpkg/status.d/base":            analyzer.Content,
		"var/lib/dpkg/status.d/libc6.md5sums":   analyzer.Content,
		"var/lib/dpkg/info/libc6:amd64.md5sums": analyzer.Content,
		"var/lib/dpkg/info/bash.md5sums":        analyzer.Content,
		"var/lib/dpkg/info/.md5sums":            analyzer.Skip,
		"var/lib/dpkg/info/sub/bash.md5sums":    analyzer.Skip,
		"var/lib/dpkg/status.d/sub/x":           analyzer.Skip,
		"var/lib/dpkg/status.d/":                analyzer.Skip,
		"var/lib/dpkg/status-old":               analyzer.Skip,
		"var/lib/dpkg/available":                analyzer.Skip,
		"usr/share/var/lib/dpkg/status":         analyzer.Skip,
		"var/lib/dpkg/info/libc6:amd64.list":    analyzer.Skip,
	} {
		if got := c.Required(p, nil); got != want {
			t.Errorf("Required(%q) = %v, want %v", p, got, want)
		}
	}
}

// Paragraph shapes the fixture does not have, written from dpkg's own
// status states (man dpkg, "INFORMATION ABOUT PACKAGES").
func TestParseStatusShapes(t *testing.T) {
	in := "\r\n\r\n" +
		"Package: held\r\nStatus: hold ok installed\r\nVersion: 1.0-1\r\nArchitecture: amd64\r\n" +
		"Description: a held package\r\n with a continuation\r\n .\r\n and another\r\n\r\n\r\n\r\n" +
		"Package: removed\nStatus: deinstall ok config-files\nVersion: 2.0-1\nArchitecture: amd64\n\n" +
		"Package: half\nStatus: install reinstreq half-installed\nVersion: 3.0-1\n\n" +
		"Package: nostatus\nVersion: 4.0-1\n\n" +
		"package: lowercase\nSTATUS: install ok installed\nversion:5.0-1\nsource: src-name (5.0-0.1)\n\n" +
		"Package: noversion\nStatus: install ok installed\n\n" +
		"# a comment line\n" +
		"Package: same-source\nStatus: install ok installed\nVersion: 6\nSource: same-source\n" // no final newline
	pkgs, skipped, err := ParseStatus(context.Background(), strings.NewReader(in), StatusPath, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Skipped{Records: 1}); skipped != want {
		t.Errorf("skipped %+v, want %+v", skipped, want)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, fmt.Sprintf("%s %s %s %s/%s", p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion))
	}
	want := []string{"held 1.0-1 amd64 /", "lowercase 5.0-1  src-name/5.0-0.1", "same-source 6  /"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// In a status.d file a paragraph without Status is installed.
	pkgs, _, err = ParseStatus(context.Background(), strings.NewReader("Package: nostatus\nVersion: 4.0-1\n"), "var/lib/dpkg/status.d/nostatus", true)
	if err != nil || len(pkgs) != 1 || pkgs[0].Name != "nostatus" {
		t.Errorf("status.d: %v %+v", err, pkgs)
	}
}

func TestParseStatusErrors(t *testing.T) {
	ctx := context.Background()
	if _, _, err := ParseStatus(ctx, strings.NewReader("\x7fELF\x02\x01\x01 garbage\nmore garbage\n"), StatusPath, false); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: err = %v, want ErrMalformed", err)
	}
	pkgs, _, err := ParseStatus(ctx, strings.NewReader(""), StatusPath, false)
	if err != nil || len(pkgs) != 0 {
		t.Errorf("empty: %v %v", pkgs, err)
	}
	// A line far beyond maxLineSize is truncated, not buffered whole.
	long := "Package: a\nStatus: install ok installed\nVersion: 1\nDescription: " + strings.Repeat("x", 4*maxLineSize) + "\n"
	pkgs, _, err = ParseStatus(ctx, strings.NewReader(long), StatusPath, false)
	if err != nil || len(pkgs) != 1 {
		t.Errorf("long line: %v %v", pkgs, err)
	}
	// Over the size cap (checked while streaming, for readers of unknown size).
	big := io.MultiReader(strings.NewReader("Package: a\nVersion: 1\nDescription: x\n"), repeatReader(' ', maxStatusSize))
	if _, _, err := ParseStatus(ctx, big, StatusPath, false); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big: err = %v, want ErrTooLarge", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := ParseStatus(cctx, strings.NewReader(genStatus(2000)), StatusPath, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestAnalyzeRefusesLargeFile(t *testing.T) {
	sr := io.NewSectionReader(repeatReaderAt{}, 0, maxStatusSize+1)
	_, err := New().Analyze(context.Background(), analyzer.Input{Path: StatusPath, Content: sr})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), StatusPath) {
		t.Fatalf("err = %v, want ErrTooLarge naming the path", err)
	}
}

type repeatReaderAt struct{}

func (repeatReaderAt) ReadAt(p []byte, _ int64) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func repeatReader(b byte, n int64) io.Reader {
	return io.LimitReader(readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = b
		}
		return len(p), nil
	}), n)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// genStatus writes n paragraphs shaped like real ones (the fixture's libc6
// paragraph with a new name each time).
func genStatus(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Package: pkg%d\nStatus: install ok installed\nPriority: optional\nSection: libs\n"+
			"Installed-Size: 13001\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n"+
			"Architecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u%d\n"+
			"Depends: libgcc-s1\nRecommends: libidn2-0 (>= 2.0.5~)\nConffiles:\n /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab\n"+
			"Description: GNU C Library: Shared libraries\n Contains the standard libraries that are used by nearly all programs on\n"+
			" the system. This package includes shared versions of the standard C library\n"+
			" and the standard math library, as well as many others.\nHomepage: https://www.gnu.org/software/libc/libc.html\n\n", i, i)
	}
	return b.String()
}

func BenchmarkParseStatus2000(b *testing.B) {
	data := genStatus(2000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		pkgs, _, err := ParseStatus(context.Background(), strings.NewReader(data), StatusPath, false)
		if err != nil || len(pkgs) != 2000 {
			b.Fatalf("%d packages, %v", len(pkgs), err)
		}
	}
}

func TestParseMD5sums(t *testing.T) {
	in := "d41d8cd98f00b204e9800998ecf8427e  usr/bin/empty\n" +
		"0123456789ABCDEF0123456789abcdef  usr/share/doc/x/README\n" +
		"0123456789abcdef0123456789abcdef */usr/lib/binary-mode\n" +
		"nothex0123456789abcdef0123456789  usr/bad/hex\n" +
		"0123456789abcdef0123456789abcdef  ../../etc/passwd\n" +
		"short  usr/bad/short\n" +
		"\n"
	owned, skipped, err := ParseMD5sums(context.Background(), strings.NewReader(in), "var/lib/dpkg/info/libfoo1:amd64.md5sums")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range owned {
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s", o.Path, o.Package, o.Arch, o.Type, o.Algo, o.Digest))
	}
	want := []string{
		"usr/bin/empty libfoo1 amd64 deb md5 d41d8cd98f00b204e9800998ecf8427e",
		"usr/share/doc/x/README libfoo1 amd64 deb md5 0123456789abcdef0123456789abcdef",
		"usr/lib/binary-mode libfoo1 amd64 deb md5 0123456789abcdef0123456789abcdef",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if skipped != 3 {
		t.Errorf("skipped %d, want 3 (bad hex, \"..\", short digest)", skipped)
	}
}
