package apk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

func section(data []byte) *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
}

func TestAlpine3184(t *testing.T) {
	data, err := os.ReadFile("testdata/alpine3184/" + InstalledPath)
	if err != nil {
		t.Fatal(err)
	}
	c := New()
	if c.Required(InstalledPath, nil) != analyzer.Content {
		t.Fatal("installed database not wanted")
	}
	res, err := c.Analyze(context.Background(), analyzer.Input{Path: InstalledPath, Content: section(data)})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ name, version, arch, src, srcVer, license, purl string }
	var got []row
	for _, p := range res.Packages {
		if p.Type != model.TypeAPK || p.Cataloger != Name || len(p.Locations) != 1 || p.Locations[0].Path != InstalledPath || len(p.Licenses) != 1 {
			t.Errorf("bad common fields: %+v", p)
			continue
		}
		got = append(got, row{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.Licenses[0], p.PURL})
	}
	want := []row{
		{"musl", "1.2.4-r2", "x86_64", "", "", "MIT", "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"},
		{"busybox", "1.36.1-r2", "x86_64", "", "", "GPL-2.0-only", "pkg:apk/alpine/busybox@1.36.1-r2?arch=x86_64"},
		{"alpine-baselayout", "3.4.3-r1", "x86_64", "", "", "GPL-2.0-only", "pkg:apk/alpine/alpine-baselayout@3.4.3-r1?arch=x86_64"},
		{"libcrypto3", "3.1.3-r0", "x86_64", "openssl", "3.1.3-r0", "Apache-2.0", "pkg:apk/alpine/libcrypto3@3.1.3-r0?arch=x86_64"},
		{"ssl_client", "1.36.1-r2", "x86_64", "busybox", "1.36.1-r2", "GPL-2.0-only", "pkg:apk/alpine/ssl_client@1.36.1-r2?arch=x86_64"},
		{"zlib", "1.2.13-r1", "x86_64", "", "", "Zlib", "pkg:apk/alpine/zlib@1.2.13-r1?arch=x86_64"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
}

func TestRequired(t *testing.T) {
	c := New()
	for _, p := range []string{"lib/apk/db/installed.old", "usr/lib/apk/db/installed", "lib/apk/db/scripts.tar", "etc/apk/world"} {
		if c.Required(p, nil) != analyzer.Skip {
			t.Errorf("Required(%q) wants it", p)
		}
	}
}

func TestParseInstalledShapes(t *testing.T) {
	ctx := context.Background()
	in := "\r\n\r\nP:a\r\nV:1-r0\r\nA:aarch64\r\n\r\n\r\n" +
		"P:noversion\n\n" +
		"V:1-r0\nA:x86_64\n\n" + // no name
		"P:last\nV:2-r3\no:origin-pkg" // no final newline, no arch
	pkgs, skipped, err := ParseInstalled(ctx, strings.NewReader(in), InstalledPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Skipped{Records: 2}); skipped != want {
		t.Errorf("skipped %+v, want %+v", skipped, want)
	}
	if w := skipped.Warning(); w != "skipped 2 records without P: or V:" {
		t.Errorf("warning %q", w)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, fmt.Sprintf("%s %s %s %s/%s %s", p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.PURL))
	}
	want := []string{
		"a 1-r0 aarch64 / pkg:apk/alpine/a@1-r0?arch=aarch64",
		"last 2-r3  origin-pkg/2-r3 pkg:apk/alpine/last@2-r3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if _, _, err := ParseInstalled(ctx, strings.NewReader("\x89PNG\r\n\x1a\nbinary junk\n"), InstalledPath); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: err = %v, want ErrMalformed", err)
	}
	long := "P:a\nV:1\nT:" + strings.Repeat("x", 3*maxLineSize) + "\nL:MIT\n"
	if pkgs, _, err := ParseInstalled(ctx, strings.NewReader(long), InstalledPath); err != nil || len(pkgs) != 1 || pkgs[0].Licenses[0] != "MIT" {
		t.Errorf("long line: %+v %v", pkgs, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := ParseInstalled(cctx, strings.NewReader(genInstalled(500)), InstalledPath); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	sr := io.NewSectionReader(zeroReaderAt{}, 0, maxInstalledSize+1)
	if _, err := New().Analyze(context.Background(), analyzer.Input{Path: InstalledPath, Content: sr}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Analyze: err = %v, want ErrTooLarge", err)
	}
	// A reader of unknown size is cut at the cap while streaming.
	if _, _, err := ParseInstalled(context.Background(), io.NewSectionReader(zeroReaderAt{}, 0, maxInstalledSize+10), InstalledPath); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseInstalled: err = %v, want ErrTooLarge", err)
	}
}

type zeroReaderAt struct{}

func (zeroReaderAt) ReadAt(p []byte, _ int64) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// genInstalled writes n records shaped like the fixture's busybox record.
func genInstalled(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "C:Q1+e/0s2BzLTADqWvDRN8EB/h7kl4=\nP:pkg%d\nV:1.36.1-r%d\nA:x86_64\nS:509247\nI:946176\n"+
			"T:Size optimized toolbox of many common UNIX utilities\nU:https://busybox.net/\nL:GPL-2.0-only\no:busybox\n"+
			"m:Sören Tempel <soeren+alpine@soeren-tempel.net>\nt:1694786435\nc:8a14e4e37ab1d2f5a4a6b1b1f1d2c0ec9b1f5d1d\n"+
			"D:so:libc.musl-x86_64.so.1\np:cmd:busybox=1.36.1-r2\nF:bin\nR:busybox\na:0:0:755\nZ:Q1WUwBY0eOGgzhVxTZxu/0d6hmgW0=\n"+
			"F:etc\nR:securetty\nZ:Q1mB95Hq2NUTZ599RDiSsj9w5FrOU=\nR:udhcpd.conf\nZ:Q1EgLFjj67ou3eMqp4m3r2ZjnQ7QU=\n\n", i, i)
	}
	return b.String()
}

func BenchmarkParseInstalled2000(b *testing.B) {
	data := genInstalled(2000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		pkgs, _, err := ParseInstalled(context.Background(), strings.NewReader(data), InstalledPath)
		if err != nil || len(pkgs) != 2000 {
			b.Fatalf("%d packages, %v", len(pkgs), err)
		}
	}
}

func TestParseInstalledFiles(t *testing.T) {
	in := "P:musl\nV:1.2.4-r2\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1iVGRAvrGYf5FVvwIW6Iu5WQ7mRQ=\n" +
		"R:nochecksum\nR:old\nZ:0123456789ABCDEF0123456789abcdef\nF:../etc\nR:escape\nZ:Q1iVGRAvrGYf5FVvwIW6Iu5WQ7mRQ=\n" +
		"F:etc\nR:bad\nZ:Q1notbase64!!\n\n" +
		"V:9\nF:x\nR:y\nZ:Q1iVGRAvrGYf5FVvwIW6Iu5WQ7mRQ=\n" // no P: the record and its files are skipped
	pkgs, owned, skipped, err := ParseInstalledFiles(context.Background(), strings.NewReader(in), InstalledPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || skipped.Records != 1 {
		t.Fatalf("packages %+v, skipped %+v", pkgs, skipped)
	}
	var got []string
	for _, o := range owned {
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s", o.Path, o.Package, o.Arch, o.Type, o.Algo, o.Digest))
	}
	want := []string{
		"lib/ld-musl-x86_64.so.1 musl x86_64 apk sha1 89519102fac661fe4556fc085ba22ee5643b9914",
		"lib/old musl x86_64 apk md5 0123456789abcdef0123456789abcdef",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
