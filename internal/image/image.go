// Package image opens container images from every source mamori scans (a
// registry, a docker-archive tar, an OCI layout directory or tar, the Docker
// daemon, containerd) as a go-containerregistry v1.Image.
//
// Everything read is treated as hostile: archives are indexed, never
// extracted; every JSON document is capped at MaxMetadataSize; member paths
// are cleaned and never leave the archive or layout directory; every layer
// stream is verified against its diff ID (and, for local blobs, its digest),
// so a truncated or substituted layer fails on Read.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is an opened image: the v1.Image plus what its source knows about it.
// Close releases files and temporary exports; the v1.Image is unusable after.
type Image struct {
	img         v1.Image
	name        string
	digest      string
	repoTags    []string
	repoDigests []string
	platform    string
	source      Source
	closers     []func() error
}

// Image returns the image. Its layers' DiffID comes from the config (no
// hashing) and Uncompressed verifies the stream against it at EOF.
func (i *Image) Image() v1.Image { return i.img }

// Name is the image's name for reports: the reference as given for registry,
// Docker and containerd images; for archives the selected tag or OCI
// ref.name annotation when there is one, else the file path.
func (i *Image) Name() string { return i.name }

// Digest is the digest ("sha256:…") of the image manifest that was opened:
// for a multi-platform image, the manifest of the selected platform. It is
// empty for a docker-archive tar and an image exported by the Docker daemon,
// which hold no registry manifest (see RepoDigests and ID).
func (i *Image) Digest() string { return i.digest }

// ID is the digest of the image config ("sha256:…"), the image ID Docker
// shows. It is known for every source.
func (i *Image) ID() string {
	h, err := i.img.ConfigName()
	if err != nil {
		return ""
	}
	return h.String()
}

// RepoTags are the image's tags ("alpine:3.20") as the source records them.
func (i *Image) RepoTags() []string { return append([]string(nil), i.repoTags...) }

// RepoDigests are "repository@sha256:…" pins: for a registry the digest the
// reference resolved to (the index for a multi-platform image), for the
// Docker daemon the RepoDigests it reports.
func (i *Image) RepoDigests() []string { return append([]string(nil), i.repoDigests...) }

// Platform is "os/arch[/variant]" as the image config declares it.
func (i *Image) Platform() string { return i.platform }

// Source is where the image was read from.
func (i *Image) Source() Source { return i.source }

// Close releases the image's files and removes temporary exports.
func (i *Image) Close() error {
	var errs []error
	for k := len(i.closers) - 1; k >= 0; k-- {
		if err := i.closers[k](); err != nil {
			errs = append(errs, err)
		}
	}
	i.closers = nil
	return errors.Join(errs...)
}

// finish wraps img for safe layer access and fills the platform.
func (i *Image) finish(img v1.Image) error {
	// Every source has already capped the config (readCapped,
	// readBlobCapped, the registry's descriptor check) before this point.
	safe, err := newSafeImage(img)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("%w: image config: %w", ErrMalformed, err)
	}
	i.img = safe
	i.platform = configPlatform(cf)
	return nil
}

// sourcePrefixes are the explicit reference prefixes Open understands.
var sourcePrefixes = []Source{SourceDockerArchive, SourceOCIArchive, SourceOCIDir, SourceRegistry, SourceDocker, SourceContainerd}

// splitSource splits "kind:rest" when kind is a known source.
func splitSource(ref string) (Source, string) {
	for _, s := range sourcePrefixes {
		if rest, ok := strings.CutPrefix(ref, string(s)+":"); ok {
			return s, rest
		}
	}
	return SourceAuto, ref
}

// Open opens the image ref names.
//
// Reference forms: "docker-archive:PATH", "oci-archive:PATH", "oci-dir:PATH",
// "registry:REF", "docker:REF", "containerd:REF" choose the source; an
// archive path may end in ":TAG" only through WithTag. A bare ref (or
// WithSource) works like Syft's and Trivy's auto mode: an existing path is
// opened with OpenFile; otherwise the Docker daemon is asked when its socket
// exists, then containerd when its socket exists, then the registry. When
// every source fails, the error lists what was tried and why each failed.
//
// ctx bounds Open and, for registry, Docker and containerd images, the later
// reads of layers: keep it alive until the Image is closed.
func Open(ctx context.Context, ref string, opts ...Option) (*Image, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	kind, rest := splitSource(ref)
	if kind == SourceAuto {
		kind = o.source
	}
	if rest == "" {
		return nil, fmt.Errorf("%w: empty reference %q", ErrInvalidReference, ref)
	}
	switch kind {
	case SourceDockerArchive, SourceOCIArchive, SourceOCIDir:
		return openFile(ctx, rest, kind, o)
	case SourceRegistry:
		return openRegistry(ctx, rest, o)
	case SourceDocker:
		return openDocker(ctx, rest, o)
	case SourceContainerd:
		return openContainerd(ctx, rest, o)
	}
	return openAuto(ctx, rest, o)
}

func openAuto(ctx context.Context, ref string, o *options) (*Image, error) {
	if _, err := os.Stat(ref); err == nil {
		return openFile(ctx, ref, SourceAuto, o)
	}
	var tried []string
	if socketExists(o.dockerHost) {
		img, err := openDocker(ctx, ref, o)
		if err == nil {
			return img, nil
		}
		tried = append(tried, fmt.Sprintf("docker (%s): %v", o.dockerHost, err))
	} else {
		tried = append(tried, fmt.Sprintf("docker: no socket at %s", o.dockerHost))
	}
	if socketExists(o.containerdAddress) {
		img, err := openContainerd(ctx, ref, o)
		if err == nil {
			return img, nil
		}
		tried = append(tried, fmt.Sprintf("containerd (%s): %v", o.containerdAddress, err))
	} else {
		tried = append(tried, fmt.Sprintf("containerd: no socket at %s", o.containerdAddress))
	}
	img, err := openRegistry(ctx, ref, o)
	if err == nil {
		return img, nil
	}
	tried = append(tried, fmt.Sprintf("registry: %v", err))
	return nil, fmt.Errorf("open %q: not a file, and every source failed: %s: %w", ref, strings.Join(tried, "; "), err)
}

func socketExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// OpenFile opens an image file for `mamori image --input FILE`: a
// docker-archive tar (`docker save`, with plain, gzip or zstd layers), an OCI
// image layout tar, or an OCI image layout directory, told apart by content.
// A gzip-compressed archive (`docker save | gzip`) is decompressed to a
// temporary file in the work directory first (removed on Close).
//
// When the archive holds several images, WithTag picks one (a RepoTag of a
// docker archive, the ref.name annotation of an OCI layout); without it a
// docker archive of several images is an ErrAmbiguous error that lists the
// tags, and an OCI layout is searched for the wanted platform.
func OpenFile(ctx context.Context, path string, opts ...Option) (*Image, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	return openFile(ctx, path, SourceAuto, o)
}

func openFile(ctx context.Context, path string, kind Source, o *options) (img *Image, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open image file %s: %w", path, errNotExist(err))
	}
	if fi.IsDir() {
		if kind != SourceAuto && kind != SourceOCIDir {
			return nil, fmt.Errorf("%w: %s is a directory, not a %s tar", ErrInvalidReference, path, kind)
		}
		return openOCIDir(ctx, path, o)
	}
	if kind == SourceOCIDir {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrInvalidReference, path)
	}
	out := &Image{}
	defer func() {
		if err != nil {
			out.Close()
		}
	}()
	tarPath, err := maybeGunzip(ctx, path, o, out)
	if err != nil {
		return nil, err
	}
	s, err := openTarStore(tarPath)
	if err != nil {
		return nil, err
	}
	out.closers = append(out.closers, s.close)

	isDocker := s.has("manifest.json")
	isOCI := s.has("oci-layout") && s.has("index.json")
	switch {
	case kind == SourceDockerArchive && !isDocker:
		return nil, fmt.Errorf("%w: %s has no manifest.json: not a docker archive", ErrMalformed, path)
	case kind == SourceOCIArchive && !isOCI:
		return nil, fmt.Errorf("%w: %s has no oci-layout and index.json: not an OCI layout tar", ErrMalformed, path)
	case kind == SourceOCIArchive, kind == SourceAuto && !isDocker && isOCI:
		return out, out.fromOCI(ctx, s, path, SourceOCIArchive, o)
	case isDocker:
		ai, err := openDockerArchive(s, o.tag)
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: %w", path, err)
		}
		out.source = SourceDockerArchive
		out.repoTags = ai.desc.RepoTags
		out.name = path
		if o.tag != "" {
			out.name = o.tag
		} else if len(ai.desc.RepoTags) > 0 {
			out.name = ai.desc.RepoTags[0]
		}
		if err := out.finish(ai); err != nil {
			return nil, fmt.Errorf("docker archive %s: %w", path, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s is neither a docker archive (manifest.json) nor an OCI layout tar (oci-layout, index.json)", ErrMalformed, path)
}

func openOCIDir(ctx context.Context, path string, o *options) (img *Image, err error) {
	s, err := openDirStore(path)
	if err != nil {
		return nil, err
	}
	out := &Image{closers: []func() error{s.close}}
	if err := out.fromOCI(ctx, s, path, SourceOCIDir, o); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

func (i *Image) fromOCI(ctx context.Context, s store, path string, kind Source, o *options) error {
	oi, names, err := openOCILayout(ctx, s, o.tag, o.platform)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", path, err)
	}
	img, err := toV1(oi)
	if err != nil {
		return err
	}
	i.source = kind
	i.repoTags = names
	i.name = path
	if o.tag != "" {
		i.name = o.tag
	} else if len(names) == 1 {
		i.name = names[0]
	}
	i.digest = oi.desc.Digest.String()
	if err := i.finish(img); err != nil {
		return fmt.Errorf("OCI layout %s: %w", path, err)
	}
	return nil
}

// maybeGunzip decompresses a gzip-compressed archive into the work directory
// (capped at the export size) and returns the path to index.
func maybeGunzip(ctx context.Context, path string, o *options, out *Image) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open image file %s: %w", path, errNotExist(err))
	}
	defer f.Close()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if sniffCompression(magic[:n]) == compNone {
		return path, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("rewind %s: %w", path, err)
	}
	// uncompressVerified needs a digest; decompression here is unverified
	// by design (the archive has none), so decompress directly.
	zr, err := decompressor(f)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrMalformed, path, err)
	}
	defer zr.Close()
	tmp, err := spool(ctx, zr, o, "mamori-archive-*.tar", out)
	if err != nil {
		return "", fmt.Errorf("decompress %s: %w", path, err)
	}
	return tmp, nil
}

// spool copies r into a new temporary file in the work directory, at most
// o.maxExportSize bytes, registering its removal with out.
func spool(ctx context.Context, r io.Reader, o *options, pattern string, out *Image) (string, error) {
	tmp, err := os.CreateTemp(o.workDir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	p := tmp.Name()
	out.closers = append(out.closers, func() error {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	n, err := io.Copy(tmp, io.LimitReader(ctxReader{ctx, r}, o.maxExportSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if n > o.maxExportSize {
		return "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, o.maxExportSize)
	}
	return p, nil
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
