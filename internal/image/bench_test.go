package image

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// benchArchive writes a docker archive of n layers, each a tar of files
// totalling about layerSize bytes.
func benchArchive(b *testing.B, n, layerSize int) string {
	b.Helper()
	var specs []archiveLayerSpec
	for i := 0; i < n; i++ {
		files := map[string]string{}
		for j := 0; j < 64; j++ {
			files[fmt.Sprintf("l%d/f%d", i, j)] = strings.Repeat(string(rune('a'+j%26)), layerSize/64)
		}
		raw := layerTar(b, files)
		specs = append(specs, archiveLayerSpec{path: fmt.Sprintf("%d/layer.tar", i), raw: raw, blob: raw})
	}
	p := filepath.Join(b.TempDir(), "bench.tar")
	writeDockerArchive(b, p, []string{"bench:1"}, specs, nil, nil)
	return p
}

// BenchmarkOpenFile measures indexing and opening a 20-layer archive (no
// layer is read).
func BenchmarkOpenFile(b *testing.B) {
	p := benchArchive(b, 20, 1<<20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		img, err := OpenFile(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		img.Close()
	}
}

// BenchmarkReadLayers measures streaming every layer's verified
// uncompressed bytes (sha256 of the diff ID included).
func BenchmarkReadLayers(b *testing.B) {
	p := benchArchive(b, 8, 4<<20)
	img, err := OpenFile(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	ls, _ := img.Image().Layers()
	var total int64
	for _, l := range ls {
		s, _ := l.Size()
		total += s
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range ls {
			rc, err := l.Uncompressed()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	}
}
