package image

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestOpenFileDockerArchiveFromGGCR(t *testing.T) {
	dir := t.TempDir()
	src := testImage(t, "linux/arm64/v8",
		map[string]string{"etc/os-release": "ID=debian\n"},
		map[string]string{"usr/bin/app": "binary"})
	p := filepath.Join(dir, "img.tar")
	writeGGCRArchive(t, p, map[string]v1.Image{"example.com/app:1.0": src})

	img := mustOpenFile(t, p)
	if img.Source() != SourceDockerArchive {
		t.Errorf("source %q", img.Source())
	}
	if got := img.RepoTags(); !reflect.DeepEqual(got, []string{"example.com/app:1.0"}) {
		t.Errorf("RepoTags %v", got)
	}
	if img.Name() != "example.com/app:1.0" {
		t.Errorf("Name %q", img.Name())
	}
	if img.Platform() != "linux/arm64/v8" {
		t.Errorf("Platform %q", img.Platform())
	}
	if img.Digest() != "" {
		t.Errorf("docker archive Digest %q, want empty", img.Digest())
	}
	wantID, _ := src.ConfigName()
	if img.ID() != wantID.String() {
		t.Errorf("ID %s want %s", img.ID(), wantID)
	}
	files := readLayerFiles(t, img.Image())
	if files["etc/os-release"] != "ID=debian\n" || files["usr/bin/app"] != "binary" {
		t.Errorf("files %v", files)
	}
	info, err := LayerInfo(img.Image())
	if err != nil {
		t.Fatal(err)
	}
	srcLayers, _ := src.Layers()
	if len(info) != 2 {
		t.Fatalf("LayerInfo %d layers", len(info))
	}
	for i, li := range info {
		d, _ := srcLayers[i].Digest()
		diff, _ := srcLayers[i].DiffID()
		sz, _ := srcLayers[i].Size()
		if li.Digest != d || li.DiffID != diff || li.Size != sz {
			t.Errorf("layer %d: got %+v want digest %s diff %s size %d", i, li, d, diff, sz)
		}
	}
	// The empty_layer history entry between the two layers is skipped.
	if info[0].CreatedBy != "RUN step 0" || info[1].CreatedBy != "RUN step 1" {
		t.Errorf("CreatedBy %q %q", info[0].CreatedBy, info[1].CreatedBy)
	}
}

func TestDockerArchiveLayerCompressions(t *testing.T) {
	raw0 := layerTar(t, map[string]string{"a/plain": "plain layer"})
	raw1 := layerTar(t, map[string]string{"b/gzip": "gzip layer"})
	raw2 := layerTar(t, map[string]string{"c/zstd": "zstd layer"})
	gz, zs := gzipBytes(t, raw1), zstdBytes(t, raw2)
	p := filepath.Join(t.TempDir(), "mixed.tar")
	writeDockerArchive(t, p, []string{"mixed:latest"}, []archiveLayerSpec{
		{path: "0/layer.tar", raw: raw0, blob: raw0},
		{path: "blobs/sha256/" + sha(gz).Hex, raw: raw1, blob: gz},
		{path: "2/layer.tar.zst", raw: raw2, blob: zs},
	}, nil, nil)

	img := mustOpenFile(t, p)
	files := readLayerFiles(t, img.Image())
	for k, v := range map[string]string{"a/plain": "plain layer", "b/gzip": "gzip layer", "c/zstd": "zstd layer"} {
		if files[k] != v {
			t.Errorf("%s = %q want %q", k, files[k], v)
		}
	}
	info, err := LayerInfo(img.Image())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		digest v1.Hash
		size   int
		mt     types.MediaType
	}{{sha(raw0), len(raw0), types.DockerUncompressedLayer}, {sha(gz), len(gz), types.DockerLayer}, {sha(zs), len(zs), types.OCILayerZStd}}
	for i, w := range want {
		if info[i].Digest != w.digest || info[i].Size != int64(w.size) || info[i].MediaType != w.mt {
			t.Errorf("layer %d: %+v want %+v", i, info[i], w)
		}
		if info[i].CreatedBy == "" {
			t.Errorf("layer %d: no CreatedBy", i)
		}
	}
	// The synthesised manifest is consistent with the layers.
	m, err := img.Image().Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 3 || m.Layers[1].Digest != sha(gz) {
		t.Errorf("manifest layers %+v", m.Layers)
	}
	// Layers are reachable by digest and diff ID.
	l, err := img.Image().LayerByDigest(sha(zs))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := l.DiffID(); d != sha(raw2) {
		t.Errorf("LayerByDigest diff ID %s", d)
	}
	if _, err := img.Image().LayerByDiffID(sha(raw1)); err != nil {
		t.Error(err)
	}
}

func TestDockerArchiveSymlinkedLayer(t *testing.T) {
	// Old docker save links a layer shared by two images to its first copy:
	// 2/layer.tar -> ../1/layer.tar. The link is followed inside the archive.
	raw := layerTar(t, map[string]string{"f": "shared"})
	p := filepath.Join(t.TempDir(), "linked.tar")
	writeDockerArchive(t, p, []string{"x:1"}, []archiveLayerSpec{
		{path: "1/layer.tar", raw: raw, blob: raw},
	}, nil, nil)
	// Rewrite with a symlinked second layer using the hand tar writer.
	img := mustOpenFile(t, p)
	if got := readLayerFiles(t, img.Image())["f"]; got != "shared" {
		t.Fatalf("got %q", got)
	}
	s, err := indexTar(bytesReaderAt(tarWithLink(t, "2/layer.tar", "../1/layer.tar", "1/layer.tar", raw)))
	if err != nil {
		t.Fatal(err)
	}
	rc, size, err := s.open("2/layer.tar")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if size != int64(len(raw)) {
		t.Errorf("linked size %d want %d", size, len(raw))
	}
}

func TestDockerArchiveMultipleImages(t *testing.T) {
	p := filepath.Join(t.TempDir(), "multi.tar")
	writeGGCRArchive(t, p, map[string]v1.Image{
		"alpine:3.20":           testImage(t, "linux/amd64", map[string]string{"id": "alpine"}),
		"example.com/debian:12": testImage(t, "linux/amd64", map[string]string{"id": "debian"}),
	})
	_, err := OpenFile(context.Background(), p)
	wantErr(t, err, ErrAmbiguous, "alpine:3.20")
	wantErr(t, err, ErrAmbiguous, "example.com/debian:12")

	// Normalised tag comparison: docker.io/library/alpine:3.20 is alpine:3.20.
	img := mustOpenFile(t, p, WithTag("docker.io/library/alpine:3.20"))
	if got := readLayerFiles(t, img.Image())["id"]; got != "alpine" {
		t.Errorf("picked %q", got)
	}
	img = mustOpenFile(t, p, WithTag("example.com/debian:12"))
	if got := readLayerFiles(t, img.Image())["id"]; got != "debian" {
		t.Errorf("picked %q", got)
	}
	_, err = OpenFile(context.Background(), p, WithTag("nope:1"))
	wantErr(t, err, ErrNotFound, "alpine:3.20")
}

func TestOCILayoutDirAndTar(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	src := testImage(t, "linux/amd64", map[string]string{"etc/hostname": "oci"})
	writeOCILayout(t, dir, nil, src, "example.com/oci:1")
	tarPath := filepath.Join(t.TempDir(), "layout.tar")
	writeTarOfDir(t, dir, tarPath)
	wantDigest, _ := src.Digest()

	for _, tc := range []struct {
		path string
		kind Source
	}{{dir, SourceOCIDir}, {tarPath, SourceOCIArchive}} {
		img := mustOpenFile(t, tc.path)
		if img.Source() != tc.kind {
			t.Errorf("%s: source %s", tc.path, img.Source())
		}
		if img.Digest() != wantDigest.String() {
			t.Errorf("%s: digest %s want %s", tc.path, img.Digest(), wantDigest)
		}
		if img.Name() != "example.com/oci:1" {
			t.Errorf("%s: name %q", tc.path, img.Name())
		}
		if got := readLayerFiles(t, img.Image())["etc/hostname"]; got != "oci" {
			t.Errorf("%s: file %q", tc.path, got)
		}
		// Explicit prefixes reach the same reader.
		img2, err := Open(context.Background(), string(tc.kind)+":"+tc.path)
		if err != nil {
			t.Fatalf("Open %s: %v", tc.kind, err)
		}
		img2.Close()
	}
	// A prefix that contradicts the content is refused.
	_, err := Open(context.Background(), "docker-archive:"+tarPath)
	wantErr(t, err, ErrMalformed, "manifest.json")
	_, err = Open(context.Background(), "oci-dir:"+tarPath)
	wantErr(t, err, ErrInvalidReference, "not a directory")
}

func TestOCILayoutMultiPlatform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	idx := testIndex(t, "linux/amd64", "linux/arm64/v8", "linux/arm/v7")
	writeOCILayout(t, dir, idx, nil, "")
	tarPath := filepath.Join(t.TempDir(), "layout.tar")
	writeTarOfDir(t, dir, tarPath)
	for _, path := range []string{dir, tarPath} {
		for _, tc := range []struct{ opt, want string }{
			{"", "linux/amd64"},
			{"linux/arm64", "linux/arm64/v8"},
			{"linux/arm64/v8", "linux/arm64/v8"},
			{"linux/arm/v7", "linux/arm/v7"},
		} {
			var opts []Option
			if tc.opt != "" {
				opts = append(opts, WithPlatform(tc.opt))
			}
			img := mustOpenFile(t, path, opts...)
			if img.Platform() != tc.want {
				t.Errorf("%s %q: platform %s", path, tc.opt, img.Platform())
			}
			if got := readLayerFiles(t, img.Image())["etc/platform"]; got != tc.want {
				t.Errorf("%s %q: content %q", path, tc.opt, got)
			}
		}
		_, err := OpenFile(context.Background(), path, WithPlatform("linux/s390x"))
		wantErr(t, err, ErrNoPlatform, "linux/amd64, linux/arm64/v8, linux/arm/v7")
	}
}

func TestOpenFileGzippedArchive(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "img.tar")
	writeGGCRArchive(t, p, map[string]v1.Image{"gz:1": testImage(t, "linux/amd64", map[string]string{"x": "gz"})})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	gzPath := filepath.Join(dir, "img.tar.gz")
	if err := os.WriteFile(gzPath, gzipBytes(t, b), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	img, err := OpenFile(context.Background(), gzPath, WithWorkDir(work))
	if err != nil {
		t.Fatal(err)
	}
	if got := readLayerFiles(t, img.Image())["x"]; got != "gz" {
		t.Errorf("got %q", got)
	}
	if ents, _ := os.ReadDir(work); len(ents) != 1 {
		t.Errorf("work dir holds %d files while open, want 1", len(ents))
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("work dir holds %d files after Close", len(ents))
	}
	// The cap applies to the decompressed size.
	_, err = OpenFile(context.Background(), gzPath, WithWorkDir(work), WithMaxExportSize(1024))
	wantErr(t, err, ErrTooLarge, "")
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("work dir holds %d files after failed open", len(ents))
	}
}

func TestSelectManifestAttestationsIgnored(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: "0000000000000000000000000000000000000000000000000000000000000000"}
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: h, MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}},
		{Digest: h, MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}},
	}}
	_, err := selectManifest(idx, v1.Platform{OS: "linux", Architecture: "amd64"})
	wantErr(t, err, ErrNoPlatform, "index offers linux/arm64")
	if err != nil && strings.Contains(err.Error(), "unknown") {
		t.Errorf("attestation listed as a platform: %v", err)
	}
	d, err := selectManifest(idx, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	if err != nil || d.Platform.Architecture != "arm64" {
		t.Errorf("arm64/v8 vs arm64: %v %v", d, err)
	}
}

func TestOCILayoutSeveralNamedImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	writeOCILayout(t, dir, nil, testImage(t, "linux/amd64", map[string]string{"n": "one"}), "example.com/one:1")
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(testImage(t, "linux/amd64", map[string]string{"n": "two"}),
		layout.WithAnnotations(map[string]string{ociRefName: "example.com/two:2"})); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFile(context.Background(), dir)
	wantErr(t, err, ErrAmbiguous, "example.com/two:2")
	img := mustOpenFile(t, dir, WithTag("example.com/two:2"))
	if got := readLayerFiles(t, img.Image())["n"]; got != "two" || img.Name() != "example.com/two:2" {
		t.Errorf("picked %q name %q", got, img.Name())
	}
	_, err = OpenFile(context.Background(), dir, WithTag("example.com/three:3"))
	wantErr(t, err, ErrNotFound, "example.com/one:1")
}
