package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// archiveDescriptor is one entry of a `docker save` manifest.json.
type archiveDescriptor struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// archiveImage is a v1.Image over one image of a docker-archive tar. Layers
// are sections of the archive file: nothing is extracted or copied.
//
// A docker archive has no registry manifest; one is synthesised when asked
// for (Manifest, RawManifest, Digest), which for gzip or zstd layers means
// hashing them once. Layers and their DiffIDs need no hashing.
type archiveImage struct {
	s         *tarStore
	desc      archiveDescriptor
	rawConfig []byte
	config    *v1.ConfigFile
	layers    []*archiveLayer

	once     sync.Once
	manifest *v1.Manifest
	rawMan   []byte
	manErr   error
}

var _ v1.Image = (*archiveImage)(nil)

// openDockerArchive reads manifest.json, picks the image (by tag when tag is
// set, else the only one), reads its config and locates every layer. Missing
// layers, bad JSON and mismatched layer counts fail here, at Open.
func openDockerArchive(s *tarStore, tag string) (*archiveImage, error) {
	raw, err := readCapped(s, "manifest.json", MaxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("docker archive manifest.json: %w", err)
	}
	var descs []archiveDescriptor
	if err := json.Unmarshal(raw, &descs); err != nil {
		return nil, fmt.Errorf("%w: docker archive manifest.json: %w", ErrMalformed, err)
	}
	d, err := pickArchiveImage(descs, tag)
	if err != nil {
		return nil, err
	}
	rawConfig, err := readCapped(s, d.Config, MaxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("docker archive config: %w", err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, fmt.Errorf("%w: docker archive config %s: %w", ErrMalformed, d.Config, err)
	}
	if len(cf.RootFS.DiffIDs) != len(d.Layers) {
		return nil, fmt.Errorf("%w: docker archive: manifest.json lists %d layers but the config has %d diff IDs", ErrMalformed, len(d.Layers), len(cf.RootFS.DiffIDs))
	}
	img := &archiveImage{s: s, desc: d, rawConfig: rawConfig, config: cf}
	for i, p := range d.Layers {
		sec, err := s.section(p)
		if err != nil {
			return nil, fmt.Errorf("docker archive layer %d (%q): %w", i, p, err)
		}
		l := &archiveLayer{sec: sec, diffID: cf.RootFS.DiffIDs[i], path: p}
		var magic [4]byte
		n, _ := sec.ReadAt(magic[:], 0) // a short layer is simply uncompressed
		l.comp = sniffCompression(magic[:n])
		if l.comp == compNone {
			// An uncompressed layer's digest is its diff ID; reads verify it.
			l.digest = l.diffID
			l.digestOK = true
		} else if d, ok := digestFromName(p); ok {
			// Content-addressed member names (go-containerregistry's
			// <hex>.tar.gz, Docker 25's blobs/sha256/<hex>) state the
			// digest, as an OCI descriptor does: taken as given and
			// verified whenever the layer is read, instead of hashing the
			// whole file before the scan starts (and on every cached rescan).
			l.digest = d
			l.digestOK = true
			l.claimed = true
		}
		img.layers = append(img.layers, l)
	}
	return img, nil
}

func pickArchiveImage(descs []archiveDescriptor, tag string) (archiveDescriptor, error) {
	if len(descs) == 0 {
		return archiveDescriptor{}, fmt.Errorf("%w: docker archive manifest.json lists no images", ErrMalformed)
	}
	var all []string
	for _, d := range descs {
		all = append(all, d.RepoTags...)
	}
	if tag == "" {
		if len(descs) == 1 {
			return descs[0], nil
		}
		return archiveDescriptor{}, fmt.Errorf("%w: docker archive holds %d images; choose one by tag: %s", ErrAmbiguous, len(descs), strings.Join(all, ", "))
	}
	want, werr := name.NewTag(tag)
	for _, d := range descs {
		for _, t := range d.RepoTags {
			if t == tag {
				return d, nil
			}
			if werr != nil {
				continue
			}
			// Compare normalised names: "alpine" is docker.io/library/alpine:latest.
			if have, err := name.NewTag(t); err == nil && have.Name() == want.Name() {
				return d, nil
			}
		}
	}
	return archiveDescriptor{}, fmt.Errorf("%w: tag %q not in docker archive (tags: %s)", ErrNotFound, tag, strings.Join(all, ", "))
}

type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
)

func sniffCompression(b []byte) compression {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return compGzip
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd:
		return compZstd
	}
	return compNone
}

func (i *archiveImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(i.layers))
	for k, l := range i.layers {
		out[k] = l
	}
	return out, nil
}

func (i *archiveImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }

func (i *archiveImage) Size() (int64, error) {
	_, raw, err := i.synth()
	return int64(len(raw)), err
}

func (i *archiveImage) ConfigName() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(i.rawConfig))
	return h, err
}

func (i *archiveImage) ConfigFile() (*v1.ConfigFile, error) { return i.config.DeepCopy(), nil }
func (i *archiveImage) RawConfigFile() ([]byte, error)      { return i.rawConfig, nil }

func (i *archiveImage) Digest() (v1.Hash, error) {
	_, raw, err := i.synth()
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	return h, err
}

func (i *archiveImage) Manifest() (*v1.Manifest, error) {
	m, _, err := i.synth()
	if err != nil {
		return nil, err
	}
	return m.DeepCopy(), nil
}

func (i *archiveImage) RawManifest() ([]byte, error) {
	_, raw, err := i.synth()
	return raw, err
}

// synth builds the Docker schema 2 manifest the archive implies.
func (i *archiveImage) synth() (*v1.Manifest, []byte, error) {
	i.once.Do(func() {
		cfgName, err := i.ConfigName()
		if err != nil {
			i.manErr = err
			return
		}
		m := &v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.DockerManifestSchema2,
			Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(i.rawConfig)), Digest: cfgName},
		}
		for _, l := range i.layers {
			d, err := l.Digest()
			if err != nil {
				i.manErr = err
				return
			}
			mt, _ := l.MediaType()
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: l.sec.Size(), Digest: d})
		}
		raw, err := json.Marshal(m)
		if err != nil {
			i.manErr = err
			return
		}
		i.manifest, i.rawMan = m, raw
	})
	return i.manifest, i.rawMan, i.manErr
}

func (i *archiveImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if cn, err := i.ConfigName(); err == nil && cn == h {
		return partial.ConfigLayer(i)
	}
	for _, l := range i.layers {
		if l.diffID == h && l.comp == compNone {
			return l, nil
		}
	}
	for _, l := range i.layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: layer %s not in docker archive", ErrNotFound, h)
}

func (i *archiveImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: diff ID %s not in docker archive", ErrNotFound, h)
}

// archiveLayer is one layer file of a docker archive.
type archiveLayer struct {
	sec    *io.SectionReader
	path   string
	diffID v1.Hash
	comp   compression

	mu       sync.Mutex
	digest   v1.Hash
	digestOK bool
	claimed  bool // digest comes from the member name: verify on read
}

// digestFromName returns the sha256 digest a layer member's name states:
// blobs/sha256/<hex>, or a top-level <hex> with a tar/compression
// extension. Legacy `docker save` names (<v1 id>/layer.tar) state none.
func digestFromName(p string) (v1.Hash, bool) {
	name, ok := strings.CutPrefix(p, "blobs/sha256/")
	if !ok {
		if strings.Contains(p, "/") {
			return v1.Hash{}, false
		}
		name = p
		for _, ext := range []string{".tar.gz", ".tgz", ".tar.zst", ".tar", ".gz", ".zst"} {
			if n, ok := strings.CutSuffix(name, ext); ok {
				name = n
				break
			}
		}
	}
	if len(name) != 64 {
		return v1.Hash{}, false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return v1.Hash{}, false
		}
	}
	return v1.Hash{Algorithm: "sha256", Hex: name}, true
}

var _ v1.Layer = (*archiveLayer)(nil)

// Digest is the sha256 of the layer file as stored; for a compressed layer
// it is computed (once) by reading the file.
func (l *archiveLayer) Digest() (v1.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.digestOK {
		return l.digest, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(l.sec, 0, l.sec.Size())); err != nil {
		return v1.Hash{}, fmt.Errorf("hash layer %s: %w", l.path, err)
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	l.digestOK = true
	return l.digest, nil
}

func (l *archiveLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Compressed returns the layer file as stored in the archive, verified
// against the digest its name states, if any.
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	rc := io.NopCloser(io.NewSectionReader(l.sec, 0, l.sec.Size()))
	if l.claimed {
		return newVerifyReader(rc, l.digest, l.sec.Size(), "layer "+l.path)
	}
	return rc, nil
}

// Uncompressed returns the layer tar, decompressed, verified against the
// diff ID at EOF.
func (l *archiveLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	return uncompressVerified(rc, l.diffID, "layer "+l.path)
}

func (l *archiveLayer) Size() (int64, error) { return l.sec.Size(), nil }

func (l *archiveLayer) MediaType() (types.MediaType, error) {
	switch l.comp {
	case compGzip:
		return types.DockerLayer, nil
	case compZstd:
		return types.OCILayerZStd, nil
	}
	return types.DockerUncompressedLayer, nil
}
