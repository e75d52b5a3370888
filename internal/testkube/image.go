package testkube

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// ImportV1Image writes img as an OCI layout tar named name (repo:tag) and
// imports it into the real node's containerd (ImportImage). It returns the
// repo@digest reference that container statuses will show as imageID.
func (c *Cluster) ImportV1Image(ctx context.Context, img v1.Image, name string) (string, error) {
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image %s: digest: %w", name, err)
	}
	dir, err := os.MkdirTemp("", "testkube-image-")
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	tarPath := filepath.Join(dir, "image.tar")
	if err := WriteOCITar(img, name, tarPath); err != nil {
		return "", err
	}
	if _, err := c.ImportImage(ctx, tarPath); err != nil {
		return "", err
	}
	ref, ok := DigestRef(name, digest.String())
	if !ok {
		return "", fmt.Errorf("image %s: name must be repo:tag, not a digest reference", name)
	}
	return ref, nil
}

// WriteOCITar writes img as an OCI image-layout tar whose index names it
// name (the annotations ctr import reads).
func WriteOCITar(img v1.Image, name, tarPath string) error {
	dir, err := os.MkdirTemp("", "testkube-layout-")
	if err != nil {
		return fmt.Errorf("image %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image %s: OCI layout: %w", name, err)
	}
	tag := name[strings.LastIndex(name, ":")+1:]
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": tag,
	})); err != nil {
		return fmt.Errorf("image %s: write OCI layout: %w", name, err)
	}
	return tarDir(dir, tarPath)
}

// tarDir writes the regular files and directories under dir to a tar.
func tarDir(dir, tarPath string) (err error) {
	f, err := os.Create(tarPath)
	if err != nil {
		return fmt.Errorf("create %s: %w", tarPath, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", tarPath, cerr)
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("%s: not a regular file or directory", path)
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return nil
}

// ReadOCITar extracts an OCI image-layout tar into dir (which must outlive
// the image: blobs are read from it lazily) and returns its first image.
// Entries other than regular files and directories, and names leaving dir,
// are errors.
func ReadOCITar(tarPath, dir string) (v1.Image, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tarPath, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", tarPath, err)
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("%s: entry %q leaves the layout", tarPath, h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return nil, fmt.Errorf("extract %s: %w", tarPath, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, fmt.Errorf("extract %s: %w", tarPath, err)
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return nil, fmt.Errorf("extract %s: %w", tarPath, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("extract %s: %w", tarPath, err)
			}
		default:
			return nil, fmt.Errorf("%s: entry %q is not a regular file or directory", tarPath, h.Name)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: OCI layout: %w", tarPath, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: index: %w", tarPath, err)
	}
	if len(m.Manifests) == 0 {
		return nil, fmt.Errorf("%s: index lists no image", tarPath)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: image: %w", tarPath, err)
	}
	return img, nil
}

// OCITarManifestDigest reads the digest of the first manifest in an OCI
// image-layout tar's index.json (e.g. the node's busybox.tar).
func OCITarManifestDigest(tarPath string) (string, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", tarPath, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", fmt.Errorf("%s: no index.json", tarPath)
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", tarPath, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "index.json" {
			continue
		}
		var idx v1.IndexManifest
		if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&idx); err != nil {
			return "", fmt.Errorf("%s: index.json: %w", tarPath, err)
		}
		if len(idx.Manifests) == 0 {
			return "", fmt.Errorf("%s: index.json lists no manifest", tarPath)
		}
		return idx.Manifests[0].Digest.String(), nil
	}
}
