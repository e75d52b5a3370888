package analyzer

import (
	"bytes"
	"context"
	"io"
	"io/fs"
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
