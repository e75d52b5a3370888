package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// parseRef parses a registry reference, marking it insecure when the options
// say so.
func parseRef(ref string, o *options) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidReference, ref, err)
	}
	if o.plainHTTP || o.insecure[r.Context().RegistryStr()] {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInvalidReference, ref, err)
		}
	}
	return r, nil
}

// openRegistry fetches ref from its registry. A multi-platform index is
// resolved to the wanted platform here (not by remote.WithPlatform) so that
// a miss names the platforms on offer.
func openRegistry(ctx context.Context, ref string, o *options) (*Image, error) {
	r, err := parseRef(ref, o)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithTransport(o.transport),
		remote.WithPlatform(o.platform),
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", r, registryError(err))
	}
	if len(desc.Manifest) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: registry %s: manifest is %d bytes, over the %d-byte cap", ErrTooLarge, r, len(desc.Manifest), MaxMetadataSize)
	}
	pinned := r.Context().Digest(desc.Digest.String())
	imgRef := pinned
	switch {
	case isIndexType(desc.MediaType):
		idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%w: registry %s: index: %w", ErrMalformed, r, err)
		}
		child, err := selectManifest(idx, o.platform)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", r, err)
		}
		if isIndexType(child.MediaType) {
			return nil, fmt.Errorf("%w: registry %s: nested index %s is not supported", ErrMalformed, r, child.Digest)
		}
		imgRef = r.Context().Digest(child.Digest.String())
	case isManifestType(desc.MediaType):
	default:
		return nil, fmt.Errorf("%w: registry %s: unsupported media type %q", ErrMalformed, r, desc.MediaType)
	}
	img, err := remote.Image(imgRef, ropts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", imgRef, registryError(err))
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("registry %s: manifest: %w", imgRef, registryError(err))
	}
	if m.Config.Size > MaxMetadataSize {
		return nil, fmt.Errorf("%w: registry %s: config is %d bytes, over the %d-byte cap", ErrTooLarge, imgRef, m.Config.Size, MaxMetadataSize)
	}
	out := &Image{
		name:        ref,
		digest:      imgRef.DigestStr(),
		repoDigests: []string{pinned.String()},
		source:      SourceRegistry,
	}
	if t, ok := r.(name.Tag); ok {
		out.repoTags = []string{t.String()}
	}
	if err := out.finish(img); err != nil {
		return nil, fmt.Errorf("registry %s: %w", imgRef, registryError(err))
	}
	return out, nil
}

// registryError classifies a registry failure: a missing manifest becomes
// ErrNotFound, a refused credential says which variables or file to set.
func registryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w (set %s/%s or log in with docker login; credentials are read from $DOCKER_CONFIG/config.json or ~/.docker/config.json)", err, EnvUsername, EnvPassword)
		}
	}
	return err
}
