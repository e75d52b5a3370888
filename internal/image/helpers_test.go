package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerTar builds an uncompressed layer tar holding files (path -> content).
func layerTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// testImage builds a small image of the given platform whose layers hold the
// given files, with a history that has an empty_layer entry between layers.
func testImage(t testing.TB, platform string, layers ...map[string]string) v1.Image {
	t.Helper()
	img := empty.Image
	var adds []mutate.Addendum
	for i, files := range layers {
		raw := layerTar(t, files)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: fmt.Sprintf("RUN step %d", i)}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	// An ENV-like entry that created no layer, after the first layer.
	h := []v1.History{cf.History[0], {CreatedBy: "ENV A=b", EmptyLayer: true}}
	cf.History = append(h, cf.History[1:]...)
	cf.Config.Env = []string{"PATH=/usr/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testIndex builds a multi-platform index of images, one per platform, each
// with a file naming its platform.
func testIndex(t testing.TB, platforms ...string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img := testImage(t, p, map[string]string{"etc/platform": p})
		pl, _ := v1.ParsePlatform(p)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: pl}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}

// readLayerFiles reads every layer's uncompressed tar and returns path ->
// content over all layers (later layers win). Any read error fails.
func readLayerFiles(t testing.TB, img v1.Image) map[string]string {
	t.Helper()
	out, err := tryReadLayerFiles(img)
	if err != nil {
		t.Fatalf("read layers: %v", err)
	}
	return out
}

func tryReadLayerFiles(img v1.Image) (map[string]string, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				rc.Close()
				return nil, err
			}
			out[h.Name] = string(b)
		}
		// Drain to EOF so the diff ID is verified.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			rc.Close()
			return nil, err
		}
		rc.Close()
	}
	return out, nil
}

// archiveLayerSpec is one layer of a hand-built docker archive.
type archiveLayerSpec struct {
	path string // member name in the archive
	raw  []byte // uncompressed tar
	blob []byte // bytes stored (raw, gzip or zstd)
}

// writeDockerArchive writes a `docker save` (format 1.2) archive by hand:
// manifest.json, the config as <hex>.json and each layer at its path.
// extra entries (name -> content) are added too.
func writeDockerArchive(t testing.TB, path string, tags []string, layers []archiveLayerSpec, cfgMutate func(*v1.ConfigFile), extra map[string][]byte) {
	t.Helper()
	cf := &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}}
	for i, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, sha(l.raw))
		cf.History = append(cf.History, v1.History{CreatedBy: fmt.Sprintf("COPY layer %d", i)})
	}
	if cfgMutate != nil {
		cfgMutate(cf)
	}
	cfgRaw, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	cfgName := sha(cfgRaw).Hex + ".json"
	desc := map[string]any{"Config": cfgName, "RepoTags": tags}
	var paths []string
	for _, l := range layers {
		paths = append(paths, l.path)
	}
	desc["Layers"] = paths
	man, err := json.Marshal([]any{desc})
	if err != nil {
		t.Fatal(err)
	}
	entries := []struct {
		name string
		data []byte
	}{{cfgName, cfgRaw}}
	for _, l := range layers {
		if strings.HasPrefix(l.path, "../") || strings.HasPrefix(l.path, "/") {
			continue
		}
		entries = append(entries, struct {
			name string
			data []byte
		}{l.path, l.blob})
	}
	for n, d := range extra {
		entries = append(entries, struct {
			name string
			data []byte
		}{n, d})
	}
	entries = append(entries, struct {
		name string
		data []byte
	}{"manifest.json", man})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeTarOfDir tars a directory (an OCI layout) into path.
func writeTarOfDir(t testing.TB, dir, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeOCILayout writes an OCI layout directory holding the index (as one
// index.json entry) or image.
func writeOCILayout(t testing.TB, dir string, idx v1.ImageIndex, img v1.Image, refName string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{ociRefName: refName}))
	}
	if idx != nil {
		if err := p.AppendIndex(idx, opts...); err != nil {
			t.Fatal(err)
		}
	}
	if img != nil {
		if err := p.AppendImage(img, opts...); err != nil {
			t.Fatal(err)
		}
	}
}

func writeGGCRArchive(t testing.TB, path string, imgs map[string]v1.Image) {
	t.Helper()
	m := map[name.Tag]v1.Image{}
	for tag, img := range imgs {
		tg, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		m[tg] = img
	}
	if err := tarball.MultiWriteToFile(path, m); err != nil {
		t.Fatal(err)
	}
}

func mustOpenFile(t testing.TB, path string, opts ...Option) *Image {
	t.Helper()
	img, err := OpenFile(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", path, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func wantErr(t testing.TB, err error, target error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %v containing %q, got nil", target, substr)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("want errors.Is(%v), got %v", target, err)
	}
	if substr != "" && !strings.Contains(err.Error(), substr) {
		t.Fatalf("want error containing %q, got %v", substr, err)
	}
}

func bytesReaderAt(b []byte) (io.ReaderAt, int64) { return bytes.NewReader(b), int64(len(b)) }

// tarWithLink builds a tar holding realName (data) and a symlink linkName ->
// target.
func tarWithLink(t testing.TB, linkName, target, realName string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: realName, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	if err := tw.WriteHeader(&tar.Header{Name: linkName, Linkname: target, Typeflag: tar.TypeSymlink}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mutateConfig(img v1.Image, cf *v1.ConfigFile) (v1.Image, error) {
	return mutate.ConfigFile(img, cf)
}
