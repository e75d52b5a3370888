package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"mamori/internal/inflate"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// MaxZstdWindow caps the window a zstd layer may ask the decoder to hold.
// zstd's default levels use windows of at most 8 MiB and `--long` 128 MiB;
// the library default (512 MiB) would let one hostile frame claim that much
// memory per layer read in parallel.
const MaxZstdWindow = 128 << 20

// uncompressVerified decompresses rc (gzip, zstd or plain, sniffed from the
// first bytes) and checks the result against diffID at EOF. A truncated or
// corrupt stream fails on Read.
func uncompressVerified(rc io.ReadCloser, diffID v1.Hash, what string) (io.ReadCloser, error) {
	zr, err := decompressor(rc)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	return newVerifyReader(struct {
		io.Reader
		io.Closer
	}{zr, closerFunc(func() error { zr.Close(); return rc.Close() })}, diffID, -1, what+" (uncompressed)")
}

// decompressor returns r decompressed according to its first bytes (gzip,
// zstd, or plain). Closing it does not close r.
func decompressor(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch sniffCompression(magic) {
	case compGzip:
		zr, err := inflate.NewGzipReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case compZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdReadCloser{zr}, nil
	}
	return io.NopCloser(br), nil
}

// zstdReadCloser adapts *zstd.Decoder (whose Close returns nothing).
type zstdReadCloser struct{ d *zstd.Decoder }

func (c zstdReadCloser) Read(p []byte) (int, error) { return c.d.Read(p) }
func (c zstdReadCloser) Close() error               { c.d.Close(); return nil }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// safeImage wraps any v1.Image so that every layer's Uncompressed stream is
// decompressed with capped memory and verified against the diff ID named in
// the config, whatever the source. DiffID comes from the config, never from
// hashing, so it is free.
type safeImage struct {
	v1.Image
	diffIDs []v1.Hash
	digests []v1.Hash
}

var _ v1.Image = (*safeImage)(nil)

// newSafeImage checks that manifest and config agree on the number of layers
// and wraps img.
func newSafeImage(img v1.Image) (*safeImage, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%w: image config: %w", ErrMalformed, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%w: manifest has %d layers but the config has %d diff IDs", ErrMalformed, len(layers), len(cf.RootFS.DiffIDs))
	}
	s := &safeImage{Image: img, diffIDs: cf.RootFS.DiffIDs}
	if _, ok := img.(*archiveImage); !ok {
		// Archive layer digests may cost a hash; they are looked up lazily.
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, fmt.Errorf("layer digest: %w", err)
			}
			s.digests = append(s.digests, d)
		}
	}
	return s, nil
}

func (s *safeImage) Layers() ([]v1.Layer, error) {
	ls, err := s.Image.Layers()
	if err != nil {
		return nil, err
	}
	if len(ls) != len(s.diffIDs) {
		return nil, fmt.Errorf("%w: layer count changed", ErrMalformed)
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = &safeLayer{Layer: l, diffID: s.diffIDs[i]}
	}
	return out, nil
}

func (s *safeImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	ls, err := s.Layers()
	if err != nil {
		return nil, err
	}
	for i, d := range s.diffIDs {
		if d == h {
			return ls[i], nil
		}
	}
	return nil, fmt.Errorf("%w: diff ID %s not in image", ErrNotFound, h)
}

func (s *safeImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	ls, err := s.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return s.Image.LayerByDigest(h) // the config blob
}

// safeLayer serves a layer's diff ID from the config and its uncompressed
// stream through uncompressVerified.
type safeLayer struct {
	v1.Layer
	diffID v1.Hash
}

var _ v1.Layer = (*safeLayer)(nil)

func (l *safeLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Uncompressed returns the layer's tar stream. A missing blob fails here; a
// truncated, corrupt or substituted one fails on Read, at the latest with
// the final Read at EOF: consumers must not trust (or cache) results of a
// stream whose Read returned an error.
func (l *safeLayer) Uncompressed() (io.ReadCloser, error) {
	mt, err := l.Layer.MediaType()
	if err == nil && isForeignOrNonDistributable(mt) {
		return nil, fmt.Errorf("%w: layer %s is a foreign layer (%s) and is not in the image", ErrNotFound, l.diffID, mt)
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return uncompressVerified(rc, l.diffID, "layer "+l.diffID.String())
}

func isForeignOrNonDistributable(mt types.MediaType) bool {
	return mt == types.DockerForeignLayer ||
		mt == "application/vnd.oci.image.layer.nondistributable.v1.tar" ||
		mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
		mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
}
