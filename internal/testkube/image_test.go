package testkube

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestOCITarRoundTrip(t *testing.T) {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := WriteOCITar(img, "mamori.local/x:1", p); err != nil {
		t.Fatal(err)
	}
	d, err := OCITarManifestDigest(p)
	if err != nil || d != want.String() {
		t.Fatalf("manifest digest %q, %v; want %s", d, err, want)
	}
	back, err := ReadOCITar(p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.Digest(); got != want {
		t.Errorf("read back digest %s, want %s", got, want)
	}
	layers, err := back.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
}

func TestReadOCITarHostile(t *testing.T) {
	for name, hdr := range map[string]*tar.Header{
		"traversal": {Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"absolute":  {Name: "/etc/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"symlink":   {Name: "blobs", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
	} {
		p := filepath.Join(t.TempDir(), "bad.tar")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(f)
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte("x"))
		}
		tw.Close()
		f.Close()
		out := t.TempDir()
		if _, err := ReadOCITar(p, out); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(out), "evil")); err == nil {
			t.Errorf("%s: wrote outside the dir", name)
		}
	}
	// not a tar at all
	p := filepath.Join(t.TempDir(), "garbage.tar")
	os.WriteFile(p, []byte(strings.Repeat("garbage", 100)), 0o644)
	if _, err := ReadOCITar(p, t.TempDir()); err == nil {
		t.Error("garbage: no error")
	}
	if _, err := OCITarManifestDigest(p); err == nil {
		t.Error("garbage digest: no error")
	}
}
