package image

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer describes one layer of an image, bottom first.
type Layer struct {
	// Index is the layer's position, 0 for the base layer.
	Index int
	// DiffID is the digest of the uncompressed tar (the cache key).
	DiffID v1.Hash
	// Digest is the digest of the layer blob as stored or distributed.
	Digest v1.Hash
	// Size is the blob's (compressed) size in bytes.
	Size int64
	// MediaType is the blob's media type.
	MediaType types.MediaType
	// CreatedBy is the Dockerfile instruction recorded in the config
	// history for this layer ("" when the history does not say).
	CreatedBy string
}

// LayerInfo lists img's layers with their history. History entries marked
// empty_layer (ENV, LABEL, ...) are skipped when aligning history to layers;
// when the history has fewer non-empty entries than there are layers (some
// builders omit it), the remaining layers have no CreatedBy.
//
// For a docker-archive image with gzip or zstd layers, Digest hashes each
// such layer once; everything else is read from the manifest and config.
func LayerInfo(img v1.Image) ([]Layer, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("layer info: config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layer info: layers: %w", err)
	}
	var createdBy []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, h.CreatedBy)
		}
	}
	out := make([]Layer, 0, len(layers))
	for i, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("layer info: layer %d diff ID: %w", i, err)
		}
		digest, err := l.Digest()
		if err != nil {
			return nil, fmt.Errorf("layer info: layer %d digest: %w", i, err)
		}
		size, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("layer info: layer %d size: %w", i, err)
		}
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("layer info: layer %d media type: %w", i, err)
		}
		li := Layer{Index: i, DiffID: diffID, Digest: digest, Size: size, MediaType: mt}
		if i < len(createdBy) {
			li.CreatedBy = createdBy[i]
		}
		out = append(out, li)
	}
	return out, nil
}
