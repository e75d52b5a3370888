package hostile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/image"
)

// Case 7: broken archives end in a clear error that names what is broken,
// from the in-process path and from the binary (exit 1, message on stderr,
// nothing on stdout).
func TestMalformedArchives(t *testing.T) {
	dir := t.TempDir()
	good := writeLayer(t, dir, gzipped, goodEntries()...)
	st, err := os.Stat(good.path)
	if err != nil {
		t.Fatal(err)
	}
	other := writeLayer(t, dir, gzipped, reg("x", "y"))
	cases := []struct {
		name string
		spec archiveSpec
		// want: the error wraps this sentinel (nil: any) and contains
		// every substring.
		sentinel error
		want     []string
	}{
		{
			name:     "truncated gzip layer",
			spec:     archiveSpec{layers: []layer{good}, truncate: map[int]int64{0: st.Size() / 2}},
			sentinel: nil,
			want:     []string{good.diffID.String(), "unexpected EOF"},
		},
		{
			name:     "manifest names a missing layer",
			spec:     archiveSpec{layers: []layer{good, good}, omit: map[int]bool{1: true}},
			sentinel: image.ErrNotFound,
			want:     []string{"1/layer.tar"},
		},
		{
			name:     "garbage manifest.json",
			spec:     archiveSpec{layers: []layer{good}, manifest: []byte("\x00\xffthis is not json{{{")},
			sentinel: image.ErrMalformed,
			want:     []string{"manifest.json"},
		},
		{
			name:     "manifest.json of the wrong shape",
			spec:     archiveSpec{layers: []layer{good}, manifest: []byte(`{"Config": 42, "Layers": "x"}`)},
			sentinel: image.ErrMalformed,
			want:     []string{"manifest.json"},
		},
		{
			name:     "config that is not JSON",
			spec:     archiveSpec{layers: []layer{good}, config: []byte("\x89PNG\r\n\x1a\n not a config")},
			sentinel: image.ErrMalformed,
			want:     []string{"config"},
		},
		{
			name:     "config with fewer diff IDs than layers",
			spec:     archiveSpec{layers: []layer{good, good}, config: []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)},
			sentinel: image.ErrMalformed,
			want:     []string{"diff IDs"},
		},
		{
			// A valid gzip tar whose diff ID in the config is another layer's.
			name:     "layer that does not match its diff ID",
			spec:     archiveSpec{layers: []layer{{path: good.path, diffID: other.diffID}}},
			sentinel: image.ErrMalformed,
			want:     []string{"does not match", other.diffID.String()},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			archive := filepath.Join(t.TempDir(), "broken.tar")
			writeArchive(t, archive, tc.spec)
			o := scanImage(t, e, archive, fastDeadline, allScanners...)
			if o.err == nil {
				t.Fatalf("scan of a broken archive succeeded (%d packages)", len(o.res.Inventory.Packages))
			}
			t.Logf("error: %v", o.err)
			if tc.sentinel != nil && !errors.Is(o.err, tc.sentinel) {
				t.Errorf("error %q does not wrap %v", o.err, tc.sentinel)
			}
			for _, s := range tc.want {
				if !strings.Contains(o.err.Error(), s) {
					t.Errorf("error %q does not name %q", o.err, s)
				}
			}
			// Nothing was cached: a layer whose stream failed must never be
			// stored under its diff ID.
			if n := cachedLayers(t, e); n != 0 {
				t.Errorf("%d layer results cached by a failed scan", n)
			}

			r := runMamori(t, e, fastDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
			if r.code != 1 {
				t.Errorf("exit code %d, want 1", r.code)
			}
			if len(bytes.TrimSpace(r.stdout)) != 0 {
				t.Errorf("a failed scan wrote a report: %s", tail(r.stdout))
			}
			for _, s := range tc.want {
				if !bytes.Contains(r.stderr, []byte(s)) {
					t.Errorf("stderr does not name %q: %s", s, tail(r.stderr))
				}
			}
		})
	}
}

// Case 7, outer file: not an archive at all, and an empty file.
func TestNotAnArchive(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":           {},
		"random":          bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 4096),
		"gzip of junk":    {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x01, 0x02, 0x03},
		"tar header only": append([]byte("manifest.json"), make([]byte, 499)...),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p := filepath.Join(t.TempDir(), "x.tar")
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
			o := scanImage(t, e, p, fastDeadline, allScanners...)
			if o.err == nil {
				t.Fatal("scan of a non-archive succeeded")
			}
			r := runMamori(t, e, fastDeadline, "image", "--input", p, "--format", "json")
			if r.code != 1 || len(r.stderr) == 0 {
				t.Errorf("exit %d, stderr %q: want 1 and a message", r.code, r.stderr)
			}
		})
	}
}

// cachedLayers counts the layer results stored in e's cache.
func cachedLayers(t testing.TB, e *env) int {
	t.Helper()
	n := 0
	for _, l := range treeOf(t, e.cache) {
		if strings.Contains(strings.Fields(l)[0], ".json.gz") {
			n++
		}
	}
	return n
}
