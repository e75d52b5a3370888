// Package demo is mamori's offline demonstration: a small OSV database
// and a demo image built from real-format package files (a Debian 12 dpkg
// database with versions that have known advisories, an npm app, Python
// packages, planted secrets, EICAR and the usual misconfigurations), so the
// console has something real to show with no network.
package demo

import (
	"archive/tar"
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"mamori/internal/vulndb"
)

//go:embed osv/*.zip
var osvZips embed.FS

// ImageRef is the tag the demo image is written under.
const ImageRef = "demo.mamori.dev/shop/checkout:1.4.2"

// ImportDB builds the vulnerability database in dbDir from the bundled
// advisories (copied to a temp dir first: vulndb imports from paths).
func ImportDB(ctx context.Context, dbDir string) (*vulndb.Result, error) {
	tmp, err := os.MkdirTemp("", "mamori-demo-osv-*")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(tmp)
	ents, err := fs.ReadDir(osvZips, "osv")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for _, e := range ents {
		b, err := osvZips.ReadFile("osv/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		eco := strings.TrimSuffix(e.Name(), ".zip")
		if err := os.MkdirAll(filepath.Join(tmp, eco), 0o700); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, eco, "all.zip"), b, 0o600); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	res, err := vulndb.Import(ctx, dbDir, tmp)
	if err != nil {
		return nil, fmt.Errorf("demo: import bundled advisories: %w", err)
	}
	return res, nil
}

// WriteImage writes the demo image as a docker-archive tar at path.
func WriteImage(path string) error {
	img, err := Image()
	if err != nil {
		return err
	}
	ref, err := name.NewTag(ImageRef)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("demo: write %s: %w", path, err)
	}
	return nil
}

// Image builds the demo image: a base layer (Debian 12 package database)
// and an application layer.
func Image() (v1.Image, error) {
	base, err := layer(baseFiles())
	if err != nil {
		return nil, err
	}
	app, err := layer(appFiles())
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, base, app)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_ENV=production",
		"STRIPE_API_KEY=" + "sk_" + "live_" + "51DemoMamori0000aaaaBBBBccccDDDDeeee"}
	cf.Config.Cmd = []string{"node", "/srv/app/server.js"}
	cf.Config.ExposedPorts = map[string]struct{}{"22/tcp": {}, "8080/tcp": {}}
	cf.History = []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:4a1c…debian-12-rootfs.tar in / "},
		{CreatedBy: "/bin/sh -c apt-get update"},
		{CreatedBy: "COPY app/ /srv/app/ # buildkit"},
	}
	cf.History[1].EmptyLayer = true
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return img, nil
}

type file struct {
	body string
	mode int64
}

func layer(files map[string]file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg, Uname: "root", Gname: "root"}); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return l, nil
}
