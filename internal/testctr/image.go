package testctr

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static puts its binary: a static
// executable, so a root file system of it alone runs anywhere.
const BusyboxPath = "/bin/busybox"

// File is one file of an image layer.
type File struct {
	Data []byte
	Mode int64  // permission bits; 0 means 0o644 (0o755 when Exec)
	Exec bool   // executable (mode 0o755 unless Mode says otherwise)
	Link string // symlink target; Data is ignored when set
}

// ImageSpec describes a test image: busybox-static with its applets
// linked into /bin, plus Files in a second layer.
type ImageSpec struct {
	// Repo is the repository part of the reference; default
	// "docker.io/mamori-test/busybox". The tag is always random.
	Repo   string
	Files  map[string]File // path inside the image ("usr/local/bin/tool") -> file
	Cmd    []string        // default ["/bin/sh"]
	Env    []string        // added to PATH=...
	Labels map[string]string
}

// BuildImage builds spec's image in memory (no daemon). The base layer is
// the host's busybox-static (apt-get install busybox-static) with one
// symlink per applet in /bin, /etc/passwd and /etc/group, and the usual
// mount points; Files go in a second layer so that the image has the
// layering of a real one.
func BuildImage(spec ImageSpec) (v1.Image, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("testctr: read %s (apt-get install busybox-static): %w", BusyboxPath, err)
	}
	applets, err := busyboxApplets()
	if err != nil {
		return nil, err
	}
	base := map[string]File{
		"bin/busybox": {Data: bb, Exec: true},
		"etc/passwd":  {Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		"etc/group":   {Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		base["bin/"+a] = File{Link: "busybox"}
	}
	dirs := []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp", "usr", "usr/bin", "usr/local", "usr/local/bin", "var", "var/tmp"}
	l1, err := layer(dirs, base)
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{l1}
	if len(spec.Files) > 0 {
		l2, err := layer(nil, spec.Files)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l2)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		return nil, fmt.Errorf("testctr: append layers: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("testctr: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	cf.Config.Cmd = spec.Cmd
	if len(cf.Config.Cmd) == 0 {
		cf.Config.Cmd = []string{"/bin/sh"}
	}
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, spec.Env...)
	cf.Config.Labels = spec.Labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("testctr: set config: %w", err)
	}
	return img, nil
}

// busyboxApplets lists the applets the host's busybox has.
func busyboxApplets() ([]string, error) {
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("testctr: %s --list: %w", BusyboxPath, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "" && !strings.ContainsAny(a, "/.") {
			applets = append(applets, a)
		}
	}
	return applets, nil
}

// layer builds an uncompressed tar of dirs and files (parents created as
// needed) as a layer. Entries are sorted so that equal input gives an
// equal digest.
func layer(dirs []string, files map[string]File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	mtime := time.Unix(1700000000, 0)
	var addDir func(d string) error
	addDir = func(d string) error {
		if d == "." || d == "" || seen[d] {
			return nil
		}
		if err := addDir(path.Dir(d)); err != nil {
			return err
		}
		seen[d] = true
		mode := int64(0o755)
		if d == "tmp" || d == "var/tmp" {
			mode = 0o1777
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: mtime})
	}
	for _, d := range dirs {
		if err := addDir(d); err != nil {
			return nil, fmt.Errorf("testctr: layer dir %s: %w", d, err)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		clean := strings.TrimPrefix(path.Clean("/"+n), "/")
		if clean == "" {
			return nil, fmt.Errorf("testctr: bad file name %q", n)
		}
		if err := addDir(path.Dir(clean)); err != nil {
			return nil, fmt.Errorf("testctr: layer dir of %s: %w", clean, err)
		}
		h := &tar.Header{Name: clean, ModTime: mtime}
		switch {
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			h.Typeflag, h.Size, h.Mode = tar.TypeReg, int64(len(f.Data)), f.Mode
			if h.Mode == 0 {
				h.Mode = 0o644
				if f.Exec {
					h.Mode = 0o755
				}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("testctr: layer %s: %w", clean, err)
		}
		if f.Link == "" {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("testctr: layer %s: %w", clean, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("testctr: close layer: %w", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("testctr: layer: %w", err)
	}
	return l, nil
}

// RandomTag returns a random tag (12 hex digits): tests never collide on
// an image name, even against a daemon another test run left behind.
func RandomTag() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux (getrandom); a fixed-format
		// fallback keeps the signature simple.
		return fmt.Sprintf("t%d", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}
