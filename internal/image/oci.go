package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobSource serves content-addressed blobs: an OCI layout (directory or
// tar) or containerd's content store.
type blobSource interface {
	// blob opens the blob named by d. Callers verify the bytes.
	blob(ctx context.Context, d v1.Hash) (io.ReadCloser, int64, error)
}

// readBlobCapped reads a metadata blob of at most MaxMetadataSize bytes and
// checks it against its descriptor (digest and, when known, size).
func readBlobCapped(ctx context.Context, bs blobSource, d v1.Descriptor, what string) ([]byte, error) {
	if d.Size > MaxMetadataSize {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, over the %d-byte cap", ErrTooLarge, what, d.Digest, d.Size, MaxMetadataSize)
	}
	rc, size, err := bs.blob(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, d.Digest, err)
	}
	if size > MaxMetadataSize {
		rc.Close()
		return nil, fmt.Errorf("%w: %s %s is %d bytes, over the %d-byte cap", ErrTooLarge, what, d.Digest, size, MaxMetadataSize)
	}
	want := d.Size
	if want <= 0 {
		want = -1
	}
	vr, err := newVerifyReader(rc, d.Digest, want, what+" "+d.Digest.String())
	if err != nil {
		return nil, err
	}
	defer vr.Close()
	b, err := io.ReadAll(io.LimitReader(vr, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: %s %s is over the %d-byte cap", ErrTooLarge, what, d.Digest, MaxMetadataSize)
	}
	return b, nil
}

func isIndexType(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifestType(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// resolveImage walks from desc through any indexes to the image manifest for
// the wanted platform and returns the image.
func resolveImage(ctx context.Context, bs blobSource, desc v1.Descriptor, want v1.Platform) (*ociImage, error) {
	for depth := 0; ; depth++ {
		if depth > MaxIndexDepth {
			return nil, fmt.Errorf("%w: indexes nested deeper than %d", ErrMalformed, MaxIndexDepth)
		}
		raw, err := readBlobCapped(ctx, bs, desc, "manifest")
		if err != nil {
			return nil, err
		}
		mt := desc.MediaType
		if mt == "" {
			mt = sniffMediaType(raw)
		}
		switch {
		case isIndexType(mt):
			idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("%w: index %s: %w", ErrMalformed, desc.Digest, err)
			}
			child, err := selectManifest(idx, want)
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
			}
			desc = child
		case isManifestType(mt):
			return newOCIImage(ctx, bs, desc, raw)
		default:
			return nil, fmt.Errorf("%w: %s has unsupported media type %q", ErrMalformed, desc.Digest, mt)
		}
	}
}

// sniffMediaType guesses a manifest's media type from its own mediaType
// field or shape (OCI allows it to be absent).
func sniffMediaType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return ""
}

// ociImage is a v1 image manifest whose blobs come from a blobSource.
type ociImage struct {
	ctx       context.Context
	bs        blobSource
	desc      v1.Descriptor
	raw       []byte
	manifest  *v1.Manifest
	rawConfig []byte
}

var _ partial.CompressedImageCore = (*ociImage)(nil)

func newOCIImage(ctx context.Context, bs blobSource, desc v1.Descriptor, raw []byte) (*ociImage, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %w", ErrMalformed, desc.Digest, err)
	}
	cfg, err := readBlobCapped(ctx, bs, m.Config, "config")
	if err != nil {
		return nil, err
	}
	return &ociImage{ctx: ctx, bs: bs, desc: desc, raw: raw, manifest: m, rawConfig: cfg}, nil
}

func (i *ociImage) RawConfigFile() ([]byte, error) { return i.rawConfig, nil }
func (i *ociImage) RawManifest() ([]byte, error)   { return i.raw, nil }

func (i *ociImage) MediaType() (types.MediaType, error) {
	if i.manifest.MediaType != "" {
		return i.manifest.MediaType, nil
	}
	return i.desc.MediaType, nil
}

func (i *ociImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.manifest.Config.Digest {
		return &blobLayer{ctx: i.ctx, bs: i.bs, desc: i.manifest.Config}, nil
	}
	for _, l := range i.manifest.Layers {
		if l.Digest == h {
			return &blobLayer{ctx: i.ctx, bs: i.bs, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("%w: layer %s not in manifest", ErrNotFound, h)
}

// blobLayer is a layer served by a blobSource, verified as it is read.
type blobLayer struct {
	ctx  context.Context
	bs   blobSource
	desc v1.Descriptor
}

var _ partial.CompressedLayer = (*blobLayer)(nil)

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Compressed opens the blob; the read fails at EOF if the bytes do not match
// the descriptor. A blob missing from the source fails here, at layer access.
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.bs.blob(l.ctx, l.desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.desc.Digest, err)
	}
	return newVerifyReader(rc, l.desc.Digest, l.desc.Size, "layer "+l.desc.Digest.String())
}

// storeBlobs serves an OCI layout's blobs/<alg>/<hex> from a store.
type storeBlobs struct{ s store }

func (b storeBlobs) blob(_ context.Context, h v1.Hash) (io.ReadCloser, int64, error) {
	if err := validHash(h); err != nil {
		return nil, 0, err
	}
	return b.s.open("blobs/" + h.Algorithm + "/" + h.Hex)
}

// validHash refuses digests whose parts could form a path (v1.NewHash already
// insists on hex, but descriptors decoded from JSON go through it too; this
// is the belt to that brace).
func validHash(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return fmt.Errorf("%w: unsupported digest %q (want sha256)", ErrMalformed, h)
	}
	for _, c := range h.Hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: digest %q is not hex", ErrMalformed, h)
		}
	}
	return nil
}

// openOCILayout reads an OCI image layout (oci-layout, index.json, blobs/)
// from a store and resolves the image for the platform, or the one whose
// org.opencontainers.image.ref.name annotation equals refName when set.
func openOCILayout(ctx context.Context, s store, refName string, want v1.Platform) (*ociImage, []string, error) {
	layoutRaw, err := readCapped(s, "oci-layout", MaxMetadataSize)
	if err != nil {
		return nil, nil, fmt.Errorf("oci-layout: %w", err)
	}
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layoutRaw, &layout); err != nil || layout.Version == "" {
		return nil, nil, fmt.Errorf("%w: oci-layout is not an OCI layout marker", ErrMalformed)
	}
	raw, err := readCapped(s, "index.json", MaxMetadataSize)
	if err != nil {
		return nil, nil, fmt.Errorf("index.json: %w", err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: index.json: %w", ErrMalformed, err)
	}
	var names []string
	for _, d := range idx.Manifests {
		if n := d.Annotations[ociRefName]; n != "" {
			names = append(names, n)
		}
	}
	if refName != "" {
		var kept []v1.Descriptor
		for _, d := range idx.Manifests {
			if d.Annotations[ociRefName] == refName {
				kept = append(kept, d)
			}
		}
		if len(kept) == 0 {
			return nil, names, fmt.Errorf("%w: no image named %q in layout (names: %v)", ErrNotFound, refName, names)
		}
		idx.Manifests = kept
	}
	bs := storeBlobs{s: s}
	// index.json is itself an index: select from it like any other.
	var root v1.Descriptor
	switch {
	case len(idx.Manifests) == 1:
		root = idx.Manifests[0]
	case !allHavePlatform(idx.Manifests):
		return nil, names, fmt.Errorf("%w: layout index.json lists %d images; choose one by name (WithTag): %v", ErrAmbiguous, len(idx.Manifests), names)
	default:
		root, err = selectManifest(idx, want)
		if err != nil {
			return nil, names, fmt.Errorf("index.json: %w", err)
		}
	}
	img, err := resolveImage(ctx, bs, root, want)
	if err != nil {
		return nil, names, err
	}
	return img, names, nil
}

// ociRefName is the OCI annotation naming an image in a layout's index.json.
const ociRefName = "org.opencontainers.image.ref.name"

// toV1 completes an ociImage into a v1.Image.
func toV1(i *ociImage) (v1.Image, error) {
	img, err := partial.CompressedToImage(i)
	if err != nil {
		return nil, fmt.Errorf("image from manifest %s: %w", i.desc.Digest, err)
	}
	return img, nil
}

func allHavePlatform(ds []v1.Descriptor) bool {
	for _, d := range ds {
		if d.Platform == nil && !isAttestation(d) {
			return false
		}
	}
	return true
}
