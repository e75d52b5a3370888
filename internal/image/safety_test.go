package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func openErr(t *testing.T, path string, opts ...Option) error {
	t.Helper()
	img, err := OpenFile(context.Background(), path, opts...)
	if err == nil {
		img.Close()
	}
	return err
}

// rawTar writes a tar of the given entries in order.
func rawTar(t *testing.T, path string, entries ...tarEnt) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.link == "" {
			tw.Write(e.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type tarEnt struct {
	name, link string
	data       []byte
}

func TestMissingLayer(t *testing.T) {
	dir := t.TempDir()
	// docker archive: the manifest names a layer that is not in the tar.
	raw := layerTar(t, map[string]string{"f": "x"})
	p := filepath.Join(dir, "missing.tar")
	writeDockerArchive(t, p, []string{"m:1"}, []archiveLayerSpec{{path: "abc/layer.tar", raw: raw, blob: raw}}, nil, nil)
	rewriteWithout(t, p, "abc/layer.tar")
	err := openErr(t, p)
	// Docker archives are checked at Open.
	wantErr(t, err, ErrNotFound, "abc/layer.tar")

	// OCI layout: the manifest names a blob that is not in blobs/. Open
	// succeeds (manifest and config are there); the layer fails on access.
	lay := filepath.Join(dir, "layout")
	src := testImage(t, "linux/amd64", map[string]string{"f": "x"})
	writeOCILayout(t, lay, nil, src, "")
	ls, _ := src.Layers()
	d, _ := ls[0].Digest()
	if err := os.Remove(filepath.Join(lay, "blobs", "sha256", d.Hex)); err != nil {
		t.Fatal(err)
	}
	img := mustOpenFile(t, lay)
	_, err = tryReadLayerFiles(img.Image())
	wantErr(t, err, ErrNotFound, d.Hex)
}

// rewriteWithout rewrites the tar at p without the named entry.
func rewriteWithout(t *testing.T, p, drop string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var ents []tarEnt
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Name != drop {
			ents = append(ents, tarEnt{name: h.Name, data: data})
		}
	}
	rawTar(t, p, ents...)
}

func TestCorruptAndTruncatedArchives(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	writeGGCRArchive(t, good, map[string]v1.Image{"g:1": testImage(t, "linux/amd64", map[string]string{"f": strings.Repeat("y", 5000)})})
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := indexTar(bytesReaderAt(b))
	if err != nil {
		t.Fatal(err)
	}
	man := idx.entries["manifest.json"]
	for _, cut := range []int{100, 700, len(b) / 2, int(man.offset + man.size/2)} {
		p := filepath.Join(dir, "cut.tar")
		if err := os.WriteFile(p, b[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := openErr(t, p); err == nil {
			t.Errorf("archive cut at %d of %d opened", cut, len(b))
		}
	}
	garbage := filepath.Join(dir, "garbage.tar")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a tar archive "), 100), 0o644)
	wantErr(t, openErr(t, garbage), ErrMalformed, "")
	empty := filepath.Join(dir, "empty.tar")
	os.WriteFile(empty, nil, 0o644)
	wantErr(t, openErr(t, empty), ErrMalformed, "neither a docker archive")
	wantErr(t, openErr(t, filepath.Join(dir, "absent.tar")), ErrNotFound, "")
}

func TestOversizedMetadata(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte(" "), MaxMetadataSize+1)

	p := filepath.Join(dir, "bigmanifest.tar")
	rawTar(t, p, tarEnt{name: "manifest.json", data: append([]byte("[]"), big...)})
	wantErr(t, openErr(t, p), ErrTooLarge, "manifest.json")

	raw := layerTar(t, map[string]string{"f": "x"})
	p = filepath.Join(dir, "bigconfig.tar")
	writeDockerArchive(t, p, []string{"b:1"}, []archiveLayerSpec{{path: "l.tar", raw: raw, blob: raw}}, func(cf *v1.ConfigFile) {
		cf.Config.Labels = map[string]string{"pad": string(big)}
	}, nil)
	wantErr(t, openErr(t, p), ErrTooLarge, "cap")

	// OCI layout: a config blob over the cap, declared honestly ...
	lay := filepath.Join(dir, "layout")
	src := testImage(t, "linux/amd64", map[string]string{"f": "x"})
	cf, _ := src.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"pad": string(big)}
	writeOCILayout(t, lay, nil, mustConfig(t, src, cf), "")
	wantErr(t, openErr(t, lay), ErrTooLarge, "config")

	// ... and index.json itself.
	lay2 := filepath.Join(dir, "layout2")
	writeOCILayout(t, lay2, nil, src, "")
	os.WriteFile(filepath.Join(lay2, "index.json"), append([]byte(`{"schemaVersion":2,"manifests":[]}`), big...), 0o644)
	wantErr(t, openErr(t, lay2), ErrTooLarge, "index.json")
}

func TestGarbageJSON(t *testing.T) {
	dir := t.TempDir()
	for _, doc := range []string{"{not json", "null", "[]", `[{"Config": 5}]`, `{"a":1}`} {
		p := filepath.Join(dir, "g.tar")
		rawTar(t, p, tarEnt{name: "manifest.json", data: []byte(doc)})
		wantErr(t, openErr(t, p), ErrMalformed, "manifest.json")
	}
	raw := layerTar(t, map[string]string{"f": "x"})
	p := filepath.Join(dir, "gc.tar")
	writeDockerArchive(t, p, []string{"g:1"}, []archiveLayerSpec{{path: "l.tar", raw: raw, blob: raw}}, nil, nil)
	// Replace the config with garbage under the same name.
	replaceEntry(t, p, ".json", []byte("\x00\x01garbage"))
	wantErr(t, openErr(t, p), ErrMalformed, "config")

	lay := filepath.Join(dir, "layout")
	writeOCILayout(t, lay, nil, testImage(t, "linux/amd64", map[string]string{"f": "x"}), "")
	os.WriteFile(filepath.Join(lay, "index.json"), []byte(`{"manifests": "nope"`), 0o644)
	wantErr(t, openErr(t, lay), ErrMalformed, "index.json")
	os.WriteFile(filepath.Join(lay, "oci-layout"), []byte(`garbage`), 0o644)
	wantErr(t, openErr(t, lay), ErrMalformed, "oci-layout")
}

// replaceEntry replaces the data of the first entry whose name ends in suffix
// (and is not manifest.json).
func replaceEntry(t *testing.T, p, suffix string, data []byte) {
	t.Helper()
	b, _ := os.ReadFile(p)
	tr := tar.NewReader(bytes.NewReader(b))
	var ents []tarEnt
	done := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(tr)
		if !done && strings.HasSuffix(h.Name, suffix) && h.Name != "manifest.json" {
			d, done = data, true
		}
		ents = append(ents, tarEnt{name: h.Name, data: d})
	}
	if !done {
		t.Fatalf("no entry *%s", suffix)
	}
	rawTar(t, p, ents...)
}

func mustConfig(t *testing.T, img v1.Image, cf *v1.ConfigFile) v1.Image {
	t.Helper()
	out, err := mutateConfig(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPathTraversal(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, layerTar(t, map[string]string{"stolen": "SECRET"}), 0o644); err != nil {
		t.Fatal(err)
	}
	raw := layerTar(t, map[string]string{"f": "x"})
	sub := filepath.Join(dir, "a", "b")
	os.MkdirAll(sub, 0o755)
	for _, layerPath := range []string{"../../secret", "/etc/passwd", "x/../../secret", "..", "."} {
		p := filepath.Join(sub, "trav.tar")
		writeDockerArchive(t, p, []string{"t:1"}, []archiveLayerSpec{{path: layerPath, raw: raw, blob: raw}}, nil, nil)
		err := openErr(t, p)
		if err == nil {
			t.Fatalf("layer path %q opened", layerPath)
		}
		if !strings.Contains(err.Error(), "unsafe path") && !strings.Contains(err.Error(), "not in archive") {
			t.Errorf("layer path %q: %v", layerPath, err)
		}
	}
	// A symlink inside the archive pointing out of it is never followed.
	p := filepath.Join(sub, "link.tar")
	man, _ := json.Marshal([]map[string]any{{"Config": "c.json", "Layers": []string{"evil/layer.tar"}}})
	rawTar(t, p,
		tarEnt{name: "c.json", data: []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("a", 64) + `"]}}`)},
		tarEnt{name: "evil/layer.tar", link: "../../../secret"},
		tarEnt{name: "manifest.json", data: man})
	wantErr(t, openErr(t, p), ErrNotFound, "evil/layer.tar")

	// OCI layout directory: a blob symlinked outside the directory is
	// refused by os.Root.
	lay := filepath.Join(dir, "layout")
	src := testImage(t, "linux/amd64", map[string]string{"f": "x"})
	writeOCILayout(t, lay, nil, src, "")
	ls, _ := src.Layers()
	d, _ := ls[0].Digest()
	blob := filepath.Join(lay, "blobs", "sha256", d.Hex)
	os.Remove(blob)
	if err := os.Symlink(secret, blob); err != nil {
		t.Fatal(err)
	}
	img := mustOpenFile(t, lay)
	files, err := tryReadLayerFiles(img.Image())
	if err == nil || files["stolen"] != "" {
		t.Fatalf("read through symlink: files %v err %v", files, err)
	}
}

func TestLayerStreamErrors(t *testing.T) {
	dir := t.TempDir()
	raw := layerTar(t, map[string]string{"f": strings.Repeat("data ", 20000)})
	gz := gzipBytes(t, raw)

	// Truncated gzip: the stream errors on Read.
	p := filepath.Join(dir, "trunc.tar")
	writeDockerArchive(t, p, []string{"t:1"}, []archiveLayerSpec{{path: "l.tar.gz", raw: raw, blob: gz[:len(gz)/2]}}, nil, nil)
	img := mustOpenFile(t, p)
	_, err := tryReadLayerFiles(img.Image())
	if err == nil {
		t.Fatal("truncated gzip layer read without error")
	}

	// Substituted content: a valid layer whose bytes are not the diff ID
	// the config names fails at EOF.
	other := layerTar(t, map[string]string{"f": "other"})
	p = filepath.Join(dir, "subst.tar")
	writeDockerArchive(t, p, []string{"t:1"}, []archiveLayerSpec{{path: "l.tar", raw: raw, blob: other}}, nil, nil)
	img = mustOpenFile(t, p)
	_, err = tryReadLayerFiles(img.Image())
	wantErr(t, err, ErrMalformed, "does not match")

	// Manifest and config disagree on the layer count.
	p = filepath.Join(dir, "count.tar")
	writeDockerArchive(t, p, []string{"t:1"}, []archiveLayerSpec{{path: "l.tar", raw: raw, blob: raw}}, func(cf *v1.ConfigFile) {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, sha([]byte("x")))
	}, nil)
	wantErr(t, openErr(t, p), ErrMalformed, "diff IDs")

	// OCI layout: a layer blob replaced by other bytes fails on read.
	lay := filepath.Join(dir, "layout")
	src := testImage(t, "linux/amd64", map[string]string{"f": "x"})
	writeOCILayout(t, lay, nil, src, "")
	ls, _ := src.Layers()
	d, _ := ls[0].Digest()
	os.WriteFile(filepath.Join(lay, "blobs", "sha256", d.Hex), gzipBytes(t, other), 0o644)
	img = mustOpenFile(t, lay)
	_, err = tryReadLayerFiles(img.Image())
	wantErr(t, err, ErrMalformed, "")
}

func TestArchiveEntryCap(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i <= MaxArchiveEntries; i++ {
		tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.Close()
	_, err := indexTar(bytesReaderAt(buf.Bytes()))
	wantErr(t, err, ErrTooLarge, "entries")
}

func TestSparseEntryRefused(t *testing.T) {
	// archive/tar cannot write sparse files: write a GNU header and patch
	// its type to 'S' (old GNU sparse), fixing the checksum.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "s", Typeflag: tar.TypeReg, Size: 1, Format: tar.FormatGNU})
	tw.Write([]byte("1"))
	tw.Close()
	b := buf.Bytes()
	b[156] = tar.TypeGNUSparse
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], []byte(fmt.Sprintf("%06o\x00 ", sum)))
	_, err := indexTar(bytesReaderAt(b))
	if err == nil {
		t.Fatal("sparse entry indexed")
	}
}

func TestOCIConfigLongerThanDeclared(t *testing.T) {
	// The manifest declares a small config; the blob on disk is over the
	// cap. It is refused from its size, before any of it is read.
	lay := filepath.Join(t.TempDir(), "layout")
	src := testImage(t, "linux/amd64", map[string]string{"f": "x"})
	writeOCILayout(t, lay, nil, src, "")
	cn, _ := src.ConfigName()
	big := bytes.Repeat([]byte("{"), 3*MaxMetadataSize)
	if err := os.WriteFile(filepath.Join(lay, "blobs", "sha256", cn.Hex), big, 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr(t, openErr(t, lay), ErrTooLarge, "config")
}

func TestInsecureRegistryOptions(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		ref  string
		want string
	}{
		{nil, "example.com/app:1", "https"},
		{[]Option{WithInsecureRegistries("example.com")}, "example.com/app:1", "http"},
		{[]Option{WithInsecureRegistries("other.example")}, "example.com/app:1", "https"},
		{[]Option{WithPlainHTTP()}, "example.com/app:1", "http"},
		{nil, "127.0.0.1:5000/app:1", "http"},
	} {
		o, err := makeOptions(tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseRef(tc.ref, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Scheme(); got != tc.want {
			t.Errorf("%s with %d options: scheme %s want %s", tc.ref, len(tc.opts), got, tc.want)
		}
	}
	if _, err := makeOptions(WithInsecureRegistries("")); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty insecure registry: %v", err)
	}
	if _, err := makeOptions(WithDockerHost("tcp://1.2.3.4:2375")); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("tcp docker host: %v", err)
	}
}

// TestArchiveDigestFromName: a layer member named by its digest is not
// hashed up front (the digest is taken from the name), and reading the layer
// verifies the name; a name that lies fails on read.
func TestArchiveDigestFromName(t *testing.T) {
	dir := t.TempDir()
	raw := layerTar(t, map[string]string{"f": strings.Repeat("data ", 20000)})
	gz := gzipBytes(t, raw)
	right := sha(gz)
	wrong := sha([]byte("not this layer"))
	for _, c := range []struct {
		name, path string
		digest     v1.Hash
		err        string
	}{
		{"ggcr-name", right.Hex + ".tar.gz", right, ""},
		{"oci-blob", "blobs/sha256/" + right.Hex, right, ""},
		{"lying-name", wrong.Hex + ".tar.gz", wrong, "does not match"},
		{"lying-blob", "blobs/sha256/" + wrong.Hex, wrong, "does not match"},
		{"legacy-id-dir", wrong.Hex + "/layer.tar.gz", right, ""}, // a v1 ID, not a digest: hashed
		{"short-hex", "abc.tar.gz", right, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".tar")
			writeDockerArchive(t, p, []string{"t:1"}, []archiveLayerSpec{{path: c.path, raw: raw, blob: gz}}, nil, nil)
			img := mustOpenFile(t, p)
			ls, err := img.Image().Layers()
			if err != nil {
				t.Fatal(err)
			}
			if d, err := ls[0].Digest(); err != nil || d != c.digest {
				t.Fatalf("Digest() = %v, %v; want %v", d, err, c.digest)
			}
			_, err = tryReadLayerFiles(img.Image())
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, ErrMalformed, c.err)
		})
	}
}
