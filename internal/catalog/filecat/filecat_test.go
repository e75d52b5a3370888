package filecat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

var errBig = errors.New("test: too large")

func lines(path string, data []byte) ([]model.Package, error) {
	var out []model.Package
	for _, l := range strings.Fields(string(data)) {
		out = append(out, model.Package{Name: l, Version: "1", Locations: []model.PackageLocation{{Path: path}}})
	}
	return out, nil
}

func TestAnalyzer(t *testing.T) {
	a := New("lines", 3, func(p string) bool { return strings.HasSuffix(p, ".lst") }, lines, 16, errBig)
	if a.Name() != "lines" || a.Version() != 3 {
		t.Fatal(a.Name(), a.Version())
	}
	in := func(b string) analyzer.Input {
		return analyzer.Input{Path: "x.lst", Content: io.NewSectionReader(bytes.NewReader([]byte(b)), 0, int64(len(b)))}
	}
	res, err := a.Analyze(context.Background(), in("a b"))
	if err != nil || len(res.Packages) != 2 || res.Packages[0].Cataloger != "lines" {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := a.Analyze(context.Background(), in(strings.Repeat("x ", 20))); !errors.Is(err, errBig) {
		t.Errorf("oversized: %v", err)
	}
	if res, err := a.Analyze(context.Background(), in("")); res != nil || err != nil {
		t.Errorf("empty: %v %v", res, err)
	}
}
