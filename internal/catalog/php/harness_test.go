package php

import (
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/filecat/filecattest"
	"mamori/internal/model"
)

func catalogTree(t testing.TB, root string, as []analyzer.Analyzer) []model.Package {
	t.Helper()
	return filecattest.CatalogTree(t, root, as)
}

func summary(pkgs []model.Package) []string { return filecattest.Summary(pkgs) }

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	filecattest.DiffLines(t, got, want)
}
