package analyzer

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"reflect"
	"testing"

	"mamori/internal/model"
)

// flagger is a test analyzer for Result.Present: it reports a finding for
// conf files holding "bad" and a Present-only result for the others.
type flagger struct{}

func (flagger) Name() string { return "test-flagger" }
func (flagger) Version() int { return 1 }
func (flagger) Required(p string, _ fs.FileInfo) Need {
	if p == "etc/app.conf" {
		return Content
	}
	return Skip
}
func (flagger) Analyze(_ context.Context, in Input) (*Result, error) {
	b, err := io.ReadAll(in.Content)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte("bad")) {
		return &Result{Present: true, Findings: []model.Finding{{ID: "bad"}}}, nil
	}
	return &Result{Present: true}, nil
}

// TestPresentClearsStaleFindings: a file fixed by a later layer must not keep
// the findings of its earlier version.
func TestPresentClearsStaleFindings(t *testing.T) {
	s, err := NewSet([]Analyzer{flagger{}})
	if err != nil {
		t.Fatal(err)
	}
	var layers []*LayerResult
	for i, body := range []string{"bad", "good"} {
		lr, err := s.WalkLayer(context.Background(), "l"+string(rune('1'+i)), bytes.NewReader(mkTar(t, []entry{{name: "etc/app.conf", body: body}})), nil)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, lr)
	}
	if r := layers[1].Files["etc/app.conf"]; r == nil || !r.Present {
		t.Fatalf("layer 2 dropped the Present-only result: %+v", layers[1].Files)
	}
	m := Merge(layers)
	if r := m.Files["etc/app.conf"]; r == nil || len(r.Findings) != 0 {
		t.Errorf("merged = %+v, want the clean top version", r)
	}
	// Reversed: the top version's finding stays.
	m = Merge([]*LayerResult{layers[1], layers[0]})
	if r := m.Files["etc/app.conf"]; r == nil || len(r.Findings) != 1 {
		t.Errorf("merged = %+v, want the finding of the top version", r)
	}
}

func TestOwnedFilesRoundTrip(t *testing.T) {
	in := OwnedFiles{
		{Path: "usr/bin/a", Package: "p", Arch: "amd64", Type: "deb", Algo: "md5", Digest: "0123"},
		{Path: "usr/bin/b c\nd", Package: "p", Arch: "amd64", Type: "deb", Algo: "md5", Digest: "4567"},
		{Path: "lib/x", Package: "q", Type: "apk", Algo: "sha1", Digest: "89ab"},
		{Path: "usr/bin/d", Package: "p", Arch: "amd64", Type: "deb", Algo: "md5", Digest: "cdef"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out OwnedFiles
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n%+v\n%+v\n%s", in, out, b)
	}
	if _, err := json.Marshal(OwnedFiles{{Path: "a\x00b", Digest: "0"}}); err == nil {
		t.Error("NUL in a path encoded")
	}
	for _, bad := range []string{`{"p":1}`, `[{"p":"x","f":"no-space-record\u0000"}]`, `[{"f":5}]`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}
