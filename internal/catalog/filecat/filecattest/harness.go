// Package filecattest runs catalogers over a directory tree the way the
// layer walk does, for the ecosystem folders' tests.
package filecattest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// CatalogTree runs analyzers over the files below root the way the layer
// walk does: Required on every regular file, Analyze on those wanted, with
// paths relative to root. It fails the test on any analyzer error.
func CatalogTree(t testing.TB, root string, as []analyzer.Analyzer) []model.Package {
	t.Helper()
	var out []model.Package
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		for _, a := range as {
			need := a.Required(rel, info)
			if need == analyzer.Skip {
				continue
			}
			in := analyzer.Input{Path: rel, Info: info}
			if need == analyzer.Content {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				in.Content = io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
			}
			res, err := a.Analyze(context.Background(), in)
			if err != nil {
				t.Errorf("%s: %v", a.Name(), err)
				continue
			}
			if res != nil {
				out = append(out, res.Packages...)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	model.SortPackages(out)
	return out
}

// Summary renders packages as "name@version [dev] path cataloger" lines.
func Summary(pkgs []model.Package) []string {
	var out []string
	for _, p := range pkgs {
		s := p.Name + "@" + p.Version
		if p.Dev {
			s += " dev"
		}
		s += " " + p.Locations[0].Path + " " + p.Cataloger
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// DiffLines fails t when got and want (sorted) differ, showing both.
func DiffLines(t testing.TB, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("packages differ\ngot:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
