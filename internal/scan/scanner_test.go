package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"mamori/internal/analyzer"
	"mamori/internal/cache"
	"mamori/internal/catalog/dpkg"
	"mamori/internal/model"
	"mamori/internal/osrelease"
)

// pkgFile is a test cataloger: every "pkgs/<name>" file holds a version
// and is one package. It counts the files it analyses, so the tests can see
// what the cache saved.
type pkgFile struct{ seen *atomic.Int64 }

func (pkgFile) Name() string { return "test-pkg" }
func (pkgFile) Version() int { return 1 }
func (pkgFile) Required(p string, _ fs.FileInfo) analyzer.Need {
	if strings.HasPrefix(p, "pkgs/") {
		return analyzer.Content
	}
	return analyzer.Skip
}
func (a pkgFile) Analyze(_ context.Context, in analyzer.Input) (*analyzer.Result, error) {
	a.seen.Add(1)
	b, err := io.ReadAll(in.Content)
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(in.Path, "pkgs/")
	return &analyzer.Result{Packages: []model.Package{{Name: name, Version: strings.TrimSpace(string(b)), Type: "npm", Ecosystem: "npm", PURL: "pkg:npm/" + name, Cataloger: "test-pkg"}}}, nil
}

func layer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testImage(t *testing.T) v1.Image {
	t.Helper()
	base := layer(t, map[string]string{
		"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"pkgs/a":         "1.0\n",
		"pkgs/b":         "2.0\n",
	})
	upper := layer(t, map[string]string{
		"pkgs/.wh.b": "",
		"pkgs/c":     "3.0\n",
		"pkgs/a":     "1.1\n",
	})
	img, err := mutate.AppendLayers(empty.Image, base, upper)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newScanner(t *testing.T, c *cache.Cache, seen *atomic.Int64) *Scanner {
	t.Helper()
	set, err := analyzer.NewSet([]analyzer.Analyzer{osrelease.New(), pkgFile{seen: seen}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Set: set, Cache: c, Version: "test", Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScanImageMergesLayersAndUsesCache(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64
	s := newScanner(t, c, &seen)
	img := testImage(t)
	res, err := s.ScanImage(context.Background(), img, ImageTarget{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range res.Inventory.Packages {
		got = append(got, p.Name+"@"+p.Version)
	}
	if strings.Join(got, ",") != "a@1.1,c@3.0" {
		t.Errorf("packages = %v, want a@1.1,c@3.0 (b whited out, a replaced)", got)
	}
	if res.Inventory.OS == nil || res.Inventory.OS.ID != "debian" {
		t.Errorf("OS = %+v", res.Inventory.OS)
	}
	layers, _ := img.Layers()
	upperID, _ := layers[1].DiffID()
	for _, p := range res.Inventory.Packages {
		if p.Locations[0].LayerDiffID != upperID.String() {
			t.Errorf("%s: layer %s, want the upper layer", p.Name, p.Locations[0].LayerDiffID)
		}
	}
	if len(res.Target.Layers) != 2 || res.Target.Layers[0].DiffID == "" {
		t.Errorf("target layers = %+v", res.Target.Layers)
	}
	first := seen.Load()
	if first != 4 {
		t.Errorf("analysed %d files, want 4", first)
	}
	// A rescan reads nothing: both layers come from the cache.
	res2, err := s.ScanImage(context.Background(), img, ImageTarget{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if seen.Load() != first {
		t.Errorf("rescan analysed %d more files, want 0", seen.Load()-first)
	}
	if len(res2.Inventory.Packages) != 2 {
		t.Errorf("rescan packages = %+v", res2.Inventory.Packages)
	}
}

// A layer whose blob is missing fails the scan with an error naming the layer.
func TestScanImageBrokenLayer(t *testing.T) {
	var seen atomic.Int64
	s := newScanner(t, nil, &seen)
	bad, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader([]byte("this is not a tar stream, not at all............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ScanImage(context.Background(), img, ImageTarget{Name: "bad"}); err == nil {
		t.Fatal("no error for a layer that is not a tar")
	}
}

func TestScanDir(t *testing.T) {
	var seen atomic.Int64
	s := newScanner(t, nil, &seen)
	dir := t.TempDir()
	res, err := s.ScanDir(context.Background(), dir, model.TargetRootFS)
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Type != model.TargetRootFS || len(res.Inventory.Packages) != 0 || res.Inventory.Packages == nil {
		t.Errorf("result = %+v", res)
	}
}

// TestSkippedRecordsAreWarnings: records a package database parser skips
// as malformed reach the result's warnings (and so every output format),
// not only a debug log.
func TestSkippedRecordsAreWarnings(t *testing.T) {
	set, err := analyzer.NewSet([]analyzer.Analyzer{dpkg.New()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Set: set, Version: "test", Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	status := "Package: ok\nStatus: install ok installed\nVersion: 1.0\n\n" +
		"Package: noversion\nStatus: install ok installed\n\n" +
		"Status: install ok installed\nVersion: 2.0\n"
	if err := os.MkdirAll(filepath.Join(dir, "var/lib/dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "var/lib/dpkg/status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := s.ScanDir(context.Background(), dir, model.TargetRootFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inventory.Packages) != 1 {
		t.Errorf("packages %+v", res.Inventory.Packages)
	}
	want := "var/lib/dpkg/status: dpkg: skipped 2 paragraphs without Package or Version"
	if len(res.Warnings) != 1 || res.Warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", res.Warnings, want)
	}
}
