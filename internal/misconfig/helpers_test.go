package misconfig

import (
	"archive/tar"
	"bytes"
	"sort"
	"testing"

	"mamori/internal/model"
)

func idSet(fs []model.Finding) map[string]int {
	m := map[string]int{}
	for _, f := range fs {
		m[f.ID]++
	}
	return m
}

// expect asserts that every id in want is present and none in not is.
func expect(t *testing.T, name string, fs []model.Finding, want, not []string) {
	t.Helper()
	got := idSet(fs)
	for _, id := range want {
		if got[id] == 0 {
			t.Errorf("%s: want %s, got %v", name, id, got)
		}
	}
	for _, id := range not {
		if got[id] != 0 {
			t.Errorf("%s: unexpected %s (got %v)", name, id, got)
		}
	}
	for _, f := range fs {
		if f.Kind != model.KindMisconfig || f.Title == "" || f.Severity == model.SeverityUnknown || len(f.Controls) == 0 || f.Remediation == "" {
			t.Errorf("%s: incomplete finding %+v", name, f)
		}
	}
}

// tarOf builds an uncompressed layer tar of regular files (path: content).
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
