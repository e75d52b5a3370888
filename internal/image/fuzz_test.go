package image

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzOpenFile writes the fuzz bytes to a file and opens it as an image
// archive (docker-archive or OCI layout tar), then reads every layer. Any
// outcome but a panic, a hang or unbounded memory is fine.
func FuzzOpenFile(f *testing.F) {
	dir := f.TempDir()
	seed := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	raw := layerTar(f, map[string]string{"etc/os-release": "ID=alpine\n"})
	p := filepath.Join(dir, "hand.tar")
	writeDockerArchive(f, p, []string{"h:1"}, []archiveLayerSpec{
		{path: "0/layer.tar", raw: raw, blob: raw},
		{path: "1/layer.tar.gz", raw: raw, blob: gzipBytes(f, raw)},
	}, nil, nil)
	seed(p)
	p = filepath.Join(dir, "ggcr.tar")
	writeGGCRArchive(f, p, map[string]v1.Image{"g:1": testImage(f, "linux/amd64", map[string]string{"a": "b"})})
	seed(p)
	lay := filepath.Join(dir, "layout")
	writeOCILayout(f, lay, testIndex(f, "linux/amd64", "linux/arm64"), nil, "x")
	p = filepath.Join(dir, "oci.tar")
	writeTarOfDir(f, lay, p)
	seed(p)
	f.Add(tarWithLink(f, "manifest.json", "../x", "x", []byte(`[{"Config":"x","Layers":["x"]}]`)))

	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "in.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := OpenFile(context.Background(), p, WithWorkDir(t.TempDir()), WithMaxExportSize(16<<20))
		if err != nil {
			return
		}
		defer img.Close()
		ls, err := img.Image().Layers()
		if err != nil {
			return
		}
		for _, l := range ls {
			rc, err := l.Uncompressed()
			if err != nil {
				continue
			}
			io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
			rc.Close()
		}
		_, _ = LayerInfo(img.Image())
	})
}

// FuzzIndexTar exercises the tar indexer alone.
func FuzzIndexTar(f *testing.F) {
	f.Add(layerTar(f, map[string]string{"a": "b", "c/d": "e"}))
	f.Add(tarWithLink(f, "l", "../../etc/passwd", "r", []byte("x")))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := indexTar(bytesReaderAt(data))
		if err != nil {
			return
		}
		for n := range s.entries {
			e, err := s.lookup(n)
			if err != nil {
				t.Fatalf("indexed %q not found: %v", n, err)
			}
			if e.offset < 0 || e.size < 0 || e.offset+e.size > int64(len(data)) {
				t.Fatalf("entry %q outside the archive: %+v of %d", n, e, len(data))
			}
		}
		for n := range s.links {
			s.lookup(n)
		}
	})
}
